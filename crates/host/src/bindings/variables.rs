//! `spin:variables@3.0.0` (async) and `fermyon:spin/variables@2.0.0` (sync):
//! both read the calling component's own rendered variables.

use super::{Host, fermyon, spin};
use crate::state::HostState;
use crate::variables::VariableError;
use wasmtime::component::Accessor;

impl spin::variables::variables::Host for HostState {}

impl<T> spin::variables::variables::HostWithStore<T> for Host {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> Result<String, spin::variables::variables::Error> {
        use spin::variables::variables::Error;
        accessor.with(|mut a| match a.get().component.variables.get(&name) {
            Ok(v) => Ok(v),
            Err(VariableError::InvalidName(n)) => Err(Error::InvalidName(n)),
            Err(VariableError::Undefined(m)) => Err(Error::Undefined(m)),
        })
    }
}

impl fermyon::spin::variables::Host for HostState {
    async fn get(&mut self, name: String) -> Result<String, fermyon::spin::variables::Error> {
        use fermyon::spin::variables::Error;
        match self.component.variables.get(&name) {
            Ok(v) => Ok(v),
            Err(VariableError::InvalidName(n)) => Err(Error::InvalidName(n)),
            Err(VariableError::Undefined(m)) => Err(Error::Undefined(m)),
        }
    }
}
