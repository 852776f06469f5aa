//! Cursors: opaque positions in a list, sealed with the server's secret.
//!
//! A cursor's text is its payload and an HMAC-SHA256 tag over the payload
//! and the list it belongs to (org, scope, filter). The list is not in the
//! text, only in the tag: a cursor replayed on another org, scope or filter,
//! edited, forged or made up fails the same check and answers the same 422.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::feed::{ActivityFilter, Scope};
use crate::domain::error::InvalidInput;

/// The server's cursor secret: an HMAC-SHA256 key.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

/// Bytes of the tag kept in the text: 128 bits, far beyond guessing.
const TAG_LEN: usize = 16;

impl CursorKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from a configured secret of any length.
    pub fn from_secret(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    fn mac(&self, list: &str, payload: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(list.as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        mac
    }

    fn seal(&self, list: &str, payload: &str) -> String {
        let tag = self.mac(list, payload).finalize().into_bytes();
        format!("{}.{}", B64.encode(payload), B64.encode(&tag[..TAG_LEN]))
    }

    fn unseal(&self, list: &str, text: &str) -> Result<String, CursorError> {
        let (payload, tag) = text.trim().split_once('.').ok_or(CursorError)?;
        let payload = String::from_utf8(B64.decode(payload).map_err(|_| CursorError)?)
            .map_err(|_| CursorError)?;
        let tag = B64.decode(tag).map_err(|_| CursorError)?;
        if tag.len() != TAG_LEN {
            return Err(CursorError);
        }
        self.mac(list, &payload)
            .verify_truncated_left(&tag)
            .map_err(|_| CursorError)?;
        Ok(payload)
    }
}

/// A cursor that is not one this server issued for this list. Every cause
/// answers alike, so a refusal tells nothing about other orgs or lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorError;

impl CursorError {
    pub fn to_input(self, loc: &[&str], input: &str) -> InvalidInput {
        InvalidInput::new(loc, "value_error", "Invalid cursor", input)
    }
}

/// A position in a feed or list: the last item seen, by (time, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ts: i64,
    pub id: String,
}

const CURSOR_VERSION: &str = "c2";

fn feed_list(org_id: &str, scope: &Scope, filter: &ActivityFilter) -> String {
    format!(
        "feed\n{org_id}\n{}\n{}",
        scope.canonical(),
        filter.canonical()
    )
}

fn named_list(org_id: &str, list: &str) -> String {
    format!("list\n{org_id}\n{list}")
}

impl Cursor {
    pub fn encode(
        &self,
        key: &CursorKey,
        org_id: &str,
        scope: &Scope,
        filter: &ActivityFilter,
    ) -> String {
        self.seal_in(key, &feed_list(org_id, scope, filter))
    }

    pub fn decode(
        text: &str,
        key: &CursorKey,
        org_id: &str,
        scope: &Scope,
        filter: &ActivityFilter,
    ) -> Result<Cursor, CursorError> {
        Self::unseal_in(text, key, &feed_list(org_id, scope, filter))
    }

    /// For lists other than activity feeds (`list` names the list and its
    /// filter, e.g. `problems|resolved=true`, `workspaces|org_acme`).
    pub fn encode_for_list(&self, key: &CursorKey, org_id: &str, list: &str) -> String {
        self.seal_in(key, &named_list(org_id, list))
    }

    pub fn decode_for_list(
        text: &str,
        key: &CursorKey,
        org_id: &str,
        list: &str,
    ) -> Result<Cursor, CursorError> {
        Self::unseal_in(text, key, &named_list(org_id, list))
    }

    fn seal_in(&self, key: &CursorKey, list: &str) -> String {
        key.seal(list, &format!("{CURSOR_VERSION}|{}|{}", self.ts, self.id))
    }

    fn unseal_in(text: &str, key: &CursorKey, list: &str) -> Result<Cursor, CursorError> {
        let payload = key.unseal(list, text)?;
        let mut parts = payload.splitn(3, '|');
        let (Some(CURSOR_VERSION), Some(ts), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError);
        };
        Ok(Cursor {
            ts: ts.parse().map_err(|_| CursorError)?,
            id: id.to_owned(),
        })
    }
}

/// A position in the live tail: the id of the last event delivered (of the
/// subscriber's own org), bound to the org and filter. It names no commit
/// sequence number, which would tell how much other orgs write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCursor {
    pub event_id: String,
}

const LIVE_CURSOR_VERSION: &str = "l2";

fn live_list(org_id: &str, filter: &ActivityFilter) -> String {
    format!("live\n{org_id}\n{}", filter.canonical())
}

impl LiveCursor {
    pub fn encode(&self, key: &CursorKey, org_id: &str, filter: &ActivityFilter) -> String {
        key.seal(
            &live_list(org_id, filter),
            &format!("{LIVE_CURSOR_VERSION}|{}", self.event_id),
        )
    }

    pub fn decode(
        text: &str,
        key: &CursorKey,
        org_id: &str,
        filter: &ActivityFilter,
    ) -> Result<LiveCursor, CursorError> {
        let payload = key.unseal(&live_list(org_id, filter), text)?;
        match payload.split_once('|') {
            Some((LIVE_CURSOR_VERSION, id)) => Ok(LiveCursor {
                event_id: id.to_owned(),
            }),
            _ => Err(CursorError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::from_secret("test")
    }

    #[test]
    fn cursors_round_trip_and_refuse_every_other_list_forgery_and_noise_alike() {
        let scope = Scope::Workspace("ws_a".into());
        let filter = ActivityFilter {
            actions: vec!["read".into()],
            ..Default::default()
        };
        let cursor = Cursor {
            ts: 1_700_000_000_000_000,
            id: "act_x".into(),
        };
        let text = cursor.encode(&key(), "org_a", &scope, &filter);
        assert_eq!(
            Cursor::decode(&text, &key(), "org_a", &scope, &filter),
            Ok(cursor.clone())
        );
        let other_key = CursorKey::from_secret("other");
        let (payload, _) = text.split_once('.').unwrap();
        let forged_payload = B64.encode(format!("{CURSOR_VERSION}|1|act_y"));
        let refused = [
            Cursor::decode(&text, &key(), "org_b", &scope, &filter),
            Cursor::decode(&text, &key(), "org_a", &Scope::Org, &filter),
            Cursor::decode(&text, &key(), "org_a", &scope, &ActivityFilter::default()),
            Cursor::decode(&text, &other_key, "org_a", &scope, &filter),
            Cursor::decode(&format!("{payload}.AAAA"), &key(), "org_a", &scope, &filter),
            Cursor::decode(
                &text.replacen(payload, &forged_payload, 1),
                &key(),
                "org_a",
                &scope,
                &filter,
            ),
            Cursor::decode("not a cursor", &key(), "org_a", &scope, &filter),
            Cursor::decode("", &key(), "org_a", &scope, &filter),
        ];
        for r in refused {
            assert_eq!(r, Err(CursorError));
        }
        // A feed cursor is not a list cursor, nor a live one.
        assert!(Cursor::decode_for_list(&text, &key(), "org_a", "problems").is_err());
        assert!(LiveCursor::decode(&text, &key(), "org_a", &filter).is_err());
        // The same filter with lists in another order is the same feed.
        let reordered = ActivityFilter {
            actions: vec!["read".into()],
            ..Default::default()
        };
        assert!(Cursor::decode(&text, &key(), "org_a", &scope, &reordered).is_ok());
    }

    #[test]
    fn live_cursors_name_the_event_not_a_sequence() {
        let filter = ActivityFilter::default();
        let cursor = LiveCursor {
            event_id: "act_1".into(),
        };
        let text = cursor.encode(&key(), "org_a", &filter);
        assert_eq!(
            LiveCursor::decode(&text, &key(), "org_a", &filter),
            Ok(cursor)
        );
        assert!(LiveCursor::decode(&text, &key(), "org_b", &filter).is_err());
    }
}
