//! Fairness between callers: one credential may have only so many requests
//! in flight (past that: 429 with `Retry-After`), and one org only a share
//! of the database pool at a time (past that, its requests queue behind
//! each other, not in front of other orgs').

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Principal;
use crate::error::{AppError, AppResult};

pub struct Admission {
    per_credential: usize,
    per_org: usize,
    credentials: Mutex<HashMap<String, Arc<Semaphore>>>,
    orgs: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Held for as long as the request runs; the places go back on drop.
pub struct Admitted {
    _credential: OwnedSemaphorePermit,
    _org: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(per_credential: usize, per_org: usize) -> Self {
        Self {
            per_credential: per_credential.max(1),
            per_org: per_org.max(1),
            credentials: Mutex::default(),
            orgs: Mutex::default(),
        }
    }

    /// A place for one request of `principal`: at once, or 429 when its
    /// credential already has `per_credential` requests in flight; then a
    /// place among its org's, waited for.
    pub async fn admit(&self, principal: &Principal) -> AppResult<Admitted> {
        let credential = principal
            .token_id
            .as_deref()
            .unwrap_or(&principal.principal_id);
        let credential = semaphore(&self.credentials, credential, self.per_credential)
            .try_acquire_owned()
            .map_err(|_| AppError::TooManyRequests)?;
        let org = semaphore(&self.orgs, &principal.org_id, self.per_org)
            .acquire_owned()
            .await
            .map_err(AppError::internal)?;
        Ok(Admitted {
            _credential: credential,
            _org: org,
        })
    }
}

fn semaphore(
    map: &Mutex<HashMap<String, Arc<Semaphore>>>,
    key: &str,
    permits: usize,
) -> Arc<Semaphore> {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Idle entries are dropped as the map grows, so it stays as small as the
    // set of callers with requests in flight.
    if map.len() > 4_096 {
        map.retain(|_, s| Arc::strong_count(s) > 1);
    }
    map.entry(key.to_owned())
        .or_insert_with(|| Arc::new(Semaphore::new(permits)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(org: &str, key: &str) -> Principal {
        Principal {
            org_id: org.into(),
            principal_type: "api_key",
            principal_id: key.into(),
            user_id: None,
            token_id: Some(key.into()),
            token_type: "api_key",
            permissions: Default::default(),
            mcp_client: None,
        }
    }

    #[tokio::test]
    async fn a_credential_gets_its_places_and_then_429_others_are_unaffected() {
        let admission = Admission::new(2, 10);
        let a = principal("org_a", "key_a");
        let first = admission.admit(&a).await.unwrap();
        let _second = admission.admit(&a).await.unwrap();
        assert!(matches!(
            admission.admit(&a).await,
            Err(AppError::TooManyRequests)
        ));
        // Another credential of the same org still gets in.
        let _other = admission.admit(&principal("org_a", "key_b")).await.unwrap();
        drop(first);
        assert!(admission.admit(&a).await.is_ok(), "a place came back");
    }

    #[tokio::test]
    async fn an_org_past_its_share_waits_while_other_orgs_go_ahead() {
        let admission = Arc::new(Admission::new(10, 1));
        let held = admission.admit(&principal("org_a", "key_1")).await.unwrap();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit(&principal("org_a", "key_2")).await.is_ok() })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "org_a's second request waits");
        assert!(admission.admit(&principal("org_b", "key_3")).await.is_ok());
        drop(held);
        assert!(waiting.await.unwrap());
    }
}
