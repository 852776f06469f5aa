//! Fairness between callers. One credential may have only so many requests
//! in flight (past that: 429 with `Retry-After`). One org may run a share of
//! the database pool's worth of requests while it is alone; while another
//! org is active too, each org runs only a share of the machine's cores at
//! once (half of them, at least one), so that a flood of expensive requests
//! queues behind itself instead of in front of other orgs. Waiting requests
//! queue within their org (bounded by the request timeout).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::auth::Principal;
use crate::domain::error::{AppError, AppResult};

/// How long after its last request an org still counts as active.
const ACTIVE_FOR: Duration = Duration::from_secs(1);

pub struct Admission {
    per_credential: usize,
    alone: usize,
    contended: usize,
    credentials: Mutex<HashMap<String, Arc<Semaphore>>>,
    orgs: Mutex<HashMap<String, OrgLoad>>,
}

#[derive(Default)]
struct OrgLoad {
    in_flight: usize,
    last_active: Option<Instant>,
    /// Wakes one of the org's waiting requests when one of its places frees.
    freed: Arc<Notify>,
}

impl OrgLoad {
    fn active(&self, now: Instant) -> bool {
        self.in_flight > 0 || self.last_active.is_some_and(|t| now - t < ACTIVE_FOR)
    }
}

/// Held for as long as the request runs; the places go back on drop.
pub struct Admitted {
    _credential: OwnedSemaphorePermit,
    org: String,
    admission: Arc<Admission>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut orgs = self.admission.lock_orgs();
        if let Some(load) = orgs.get_mut(&self.org) {
            load.in_flight = load.in_flight.saturating_sub(1);
            load.last_active = Some(Instant::now());
            load.freed.notify_one();
        }
    }
}

impl Admission {
    /// `per_org`: an org's share while it is alone; `contended`: while
    /// another org is active too.
    pub fn new(per_credential: usize, per_org: usize, contended: usize) -> Self {
        Self {
            per_credential: per_credential.max(1),
            alone: per_org.max(1),
            contended: contended.clamp(1, per_org.max(1)),
            credentials: Mutex::default(),
            orgs: Mutex::default(),
        }
    }

    /// What an org may run while another is active: half the cores, at least one.
    pub fn contended_share() -> usize {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }

    fn lock_orgs(&self) -> std::sync::MutexGuard<'_, HashMap<String, OrgLoad>> {
        self.orgs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place for one request of `principal`: at once, or 429 when its
    /// credential already has `per_credential` requests in flight; then a
    /// place among its org's, waited for.
    pub async fn admit(self: &Arc<Self>, principal: &Principal) -> AppResult<Admitted> {
        let credential = principal
            .token_id
            .as_deref()
            .unwrap_or(&principal.principal_id);
        let credential = semaphore(&self.credentials, credential, self.per_credential)
            .try_acquire_owned()
            .map_err(|_| AppError::TooManyRequests)?;
        let org = principal.org_id.clone();
        loop {
            let freed = match self.take_place(&org) {
                Ok(()) => {
                    return Ok(Admitted {
                        _credential: credential,
                        org,
                        admission: self.clone(),
                    })
                }
                Err(freed) => freed,
            };
            // Woken when the org frees a place (a permit is stored if that
            // happened since the check), or after a second at most: another
            // org may have gone quiet meanwhile.
            let _ = tokio::time::timeout(ACTIVE_FOR, freed.notified()).await;
        }
    }

    /// Takes a place for `org`, or answers what to wait on for one.
    fn take_place(&self, org: &str) -> Result<(), Arc<Notify>> {
        let now = Instant::now();
        let mut orgs = self.lock_orgs();
        // Every admission looks at the other orgs: quiet ones are dropped
        // early, so that look stays as short as the set of active orgs.
        if orgs.len() > 64 {
            orgs.retain(|_, load| load.active(now));
        }
        let contended = orgs
            .iter()
            .any(|(other, load)| other != org && load.active(now));
        let share = if contended {
            self.contended
        } else {
            self.alone
        };
        let load = orgs.entry(org.to_owned()).or_default();
        load.last_active = Some(now);
        if load.in_flight < share {
            load.in_flight += 1;
            Ok(())
        } else {
            Err(load.freed.clone())
        }
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
            viewer_token: None,
        }
    }

    #[tokio::test]
    async fn a_credential_gets_its_places_and_then_429_others_are_unaffected() {
        let admission = Arc::new(Admission::new(2, 10, 10));
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
    async fn an_org_alone_gets_its_share_and_waits_past_it() {
        let admission = Arc::new(Admission::new(10, 2, 1));
        let _one = admission.admit(&principal("org_a", "key_1")).await.unwrap();
        let two = admission.admit(&principal("org_a", "key_2")).await.unwrap();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit(&principal("org_a", "key_3")).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the third waits for a place");
        drop(two);
        assert!(waiting.await.unwrap(), "and gets the one freed");
    }

    #[tokio::test]
    async fn while_another_org_is_active_each_runs_its_contended_share() {
        let admission = Arc::new(Admission::new(10, 4, 1));
        let busy = admission.admit(&principal("org_a", "key_1")).await.unwrap();
        // org_b arrives: it gets in at once, and org_a is now held to one.
        let quiet = admission.admit(&principal("org_b", "key_2")).await.unwrap();
        let second = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit(&principal("org_a", "key_3")).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "org_a waits while org_b is active");
        drop(busy);
        assert!(second.await.unwrap());
        drop(quiet);
    }
}
