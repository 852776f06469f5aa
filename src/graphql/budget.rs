//! One complexity budget for a whole request body. async-graphql checks each
//! operation against the limit on its own; a batch of operations shares the
//! budget here, so a body of many cheap-looking operations costs no more than
//! one operation may.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{ServerError, ValidationResult};

/// The operations a request body may hold.
pub const MAX_BATCH_OPERATIONS: usize = 10;

/// What the operations of one body have spent; put into each request's data.
#[derive(Clone, Default)]
pub struct SharedBudget(Arc<AtomicUsize>);

/// The extension that charges each validated operation to its body's budget.
pub struct BatchBudget {
    pub limit: usize,
}

impl ExtensionFactory for BatchBudget {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Charge { limit: self.limit })
    }
}

struct Charge {
    limit: usize,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Charge {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(SharedBudget(spent)) = ctx.data_opt::<SharedBudget>() {
            let total = spent.fetch_add(result.complexity, Ordering::Relaxed) + result.complexity;
            if total > self.limit {
                return Err(vec![ServerError::new(
                    format!(
                        "The operations of this request exceed their shared complexity budget of {}",
                        self.limit
                    ),
                    None,
                )]);
            }
        }
        Ok(result)
    }
}
