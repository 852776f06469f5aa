//! An API key. Only the SHA-256 of the secret is stored; `prefix` is for display.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub role: Option<String>,
    pub permissions: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// A viewer token's end (microseconds); `None` for keys, which do not expire.
    pub expires_at: Option<i64>,
    /// A viewer token's narrowing and allowed origins (JSON); `None` for keys.
    pub viewer: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
