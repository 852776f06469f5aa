//! Capabilities as types. A service that changes data names the capability
//! it needs in its signature (`Grant<'_, cap::ProblemCreate>`), and only
//! [`Principal::grant`] can make one: the proof travels with the call, so a
//! service cannot be reached without the permission and needs no check of
//! its own.

use std::marker::PhantomData;
use std::ops::Deref;

use super::principal::Principal;
use crate::domain::error::{AppError, AppResult};
use crate::domain::permission::Permission;

/// A permission named as a type.
pub trait Capability {
    const PERMISSION: Permission;
}

/// One type per permission that a service can ask proof of.
pub mod cap {
    use super::{Capability, Permission};

    macro_rules! capabilities {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("The `", stringify!($name), "` permission.")]
            pub struct $name;
            impl Capability for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    capabilities!(
        ActivityWrite,
        ActivityExport,
        ActivityRefresh,
        ProblemCreate,
        ProblemResolve,
        ActivityRetention,
        StreamManage,
        ViewerCreate,
    );
}

/// Proof that a principal holds capability `C`; derefs to the principal.
pub struct Grant<'a, C: Capability> {
    principal: &'a Principal,
    _capability: PhantomData<C>,
}

impl<C: Capability> Deref for Grant<'_, C> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        self.principal
    }
}

impl Principal {
    /// Proof of capability `C`, or the 403 that names its permission.
    pub fn grant<C: Capability>(&self) -> AppResult<Grant<'_, C>> {
        if self.permissions.contains(&C::PERMISSION) {
            Ok(Grant {
                principal: self,
                _capability: PhantomData,
            })
        } else {
            Err(AppError::Forbidden {
                required_permission: C::PERMISSION.as_str(),
            })
        }
    }
}
