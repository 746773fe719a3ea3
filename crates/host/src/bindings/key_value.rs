//! The three key-value interfaces, all over one [`vnext_kv::Store`] per label:
//! `spin:key-value@3.0.0` (async, streamed `get-keys`),
//! `fermyon:spin/key-value@2.0.0` (Spin 2 SDKs) and `wasi:keyvalue`
//! 2024-10-17 draft (store, batch, atomics with compare-and-swap).
//!
//! Opening follows Spin: a label the component did not list in
//! `key_value_stores` is `access-denied`, whether or not such a store exists
//! (so a component cannot probe for other stores); a listed label with no
//! configured store is `no-such-store` (the host refuses to start in that
//! case, so it only shows if configuration changes under a running app).

use super::{Host, fermyon, spin, wasi};
use crate::state::HostState;
use std::sync::Arc;
use vnext_kv::Store;
use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

/// An open store, as held in the resource table.
pub struct KvHandle {
    pub store: Arc<dyn Store>,
}

/// A compare-and-swap handle: the value seen when it was made.
pub struct CasHandle {
    store: Arc<dyn Store>,
    key: String,
    current: Option<Vec<u8>>,
}

/// How many keys one `wasi:keyvalue` `list-keys` page returns.
const LIST_PAGE: usize = 1000;

enum OpenError {
    NoSuchStore,
    AccessDenied,
}

fn open_store(state: &HostState, label: &str) -> Result<Arc<dyn Store>, OpenError> {
    if !state.component.key_value_stores.contains(label) {
        return Err(OpenError::AccessDenied);
    }
    state.app.stores.get(label).ok_or(OpenError::NoSuchStore)
}

/// Maps a backend error onto each interface's error variant.
trait FromKv: Sized {
    fn other(msg: String) -> Self;
    fn from_kv(e: vnext_kv::Error) -> Self {
        Self::other(e.to_string())
    }
}

impl FromKv for spin::key_value::key_value::Error {
    fn other(msg: String) -> Self {
        Self::Other(msg)
    }
}
impl FromKv for fermyon::spin::key_value::Error {
    fn other(msg: String) -> Self {
        Self::Other(msg)
    }
}
impl FromKv for wasi::keyvalue::store::Error {
    fn other(msg: String) -> Self {
        Self::Other(msg)
    }
}

fn table_err<E: FromKv>(e: impl std::fmt::Display) -> E {
    E::other(format!("invalid store handle: {e}"))
}

// ---- spin:key-value@3.0.0 -------------------------------------------------

mod v3 {
    pub use super::spin::key_value::key_value::*;
}

fn handle_store<T>(accessor: &Accessor<T, Host>, h: &Resource<KvHandle>) -> Result<Arc<dyn Store>, v3::Error> {
    accessor.with(|mut a| a.get().table.get(h).map(|h| h.store.clone()).map_err(table_err))
}

impl v3::Host for HostState {}

impl v3::HostStore for HostState {
    async fn drop(&mut self, rep: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl<T> v3::HostStoreWithStore<T> for Host {
    async fn open(accessor: &Accessor<T, Self>, label: String) -> Result<Resource<KvHandle>, v3::Error> {
        accessor.with(|mut a| {
            let state = a.get();
            let store = open_store(state, &label).map_err(|e| match e {
                OpenError::NoSuchStore => v3::Error::NoSuchStore,
                OpenError::AccessDenied => v3::Error::AccessDenied,
            })?;
            state.table.push(KvHandle { store }).map_err(table_err)
        })
    }

    async fn get(accessor: &Accessor<T, Self>, this: Resource<KvHandle>, key: String) -> Result<Option<Vec<u8>>, v3::Error> {
        let store = handle_store(accessor, &this)?;
        store.get(&key).await.map_err(FromKv::from_kv)
    }

    async fn set(accessor: &Accessor<T, Self>, this: Resource<KvHandle>, key: String, value: Vec<u8>) -> Result<(), v3::Error> {
        let store = handle_store(accessor, &this)?;
        store.set(&key, &value).await.map_err(FromKv::from_kv)
    }

    async fn delete(accessor: &Accessor<T, Self>, this: Resource<KvHandle>, key: String) -> Result<(), v3::Error> {
        let store = handle_store(accessor, &this)?;
        store.delete(&key).await.map_err(FromKv::from_kv)
    }

    async fn exists(accessor: &Accessor<T, Self>, this: Resource<KvHandle>, key: String) -> Result<bool, v3::Error> {
        let store = handle_store(accessor, &this)?;
        store.exists(&key).await.map_err(FromKv::from_kv)
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        this: Resource<KvHandle>,
    ) -> (StreamReader<String>, FutureReader<Result<(), v3::Error>>) {
        let store = handle_store(accessor, &this);
        let (keys, result) = match store {
            Ok(s) => match s.get_keys().await {
                Ok(k) => (k, Ok(())),
                Err(e) => (Vec::new(), Err(v3::Error::from_kv(e))),
            },
            Err(e) => (Vec::new(), Err(e)),
        };
        accessor.with(|mut a| {
            let stream = StreamReader::new(&mut a, keys).expect("stream for get-keys");
            let future = FutureReader::new(&mut a, async move { wasmtime::error::Ok(result) }).expect("future for get-keys");
            (stream, future)
        })
    }
}

// ---- fermyon:spin/key-value@2.0.0 ------------------------------------------

mod v2 {
    pub use super::fermyon::spin::key_value::*;
}

impl HostState {
    fn kv<E: FromKv>(&self, h: &Resource<KvHandle>) -> Result<Arc<dyn Store>, E> {
        self.table.get(h).map(|h| h.store.clone()).map_err(table_err)
    }
}

impl v2::Host for HostState {}

impl v2::HostStore for HostState {
    async fn open(&mut self, label: String) -> Result<Resource<KvHandle>, v2::Error> {
        let store = open_store(self, &label).map_err(|e| match e {
            OpenError::NoSuchStore => v2::Error::NoSuchStore,
            OpenError::AccessDenied => v2::Error::AccessDenied,
        })?;
        self.table.push(KvHandle { store }).map_err(table_err)
    }

    async fn get(&mut self, this: Resource<KvHandle>, key: String) -> Result<Option<Vec<u8>>, v2::Error> {
        self.kv(&this)?.get(&key).await.map_err(FromKv::from_kv)
    }

    async fn set(&mut self, this: Resource<KvHandle>, key: String, value: Vec<u8>) -> Result<(), v2::Error> {
        self.kv(&this)?.set(&key, &value).await.map_err(FromKv::from_kv)
    }

    async fn delete(&mut self, this: Resource<KvHandle>, key: String) -> Result<(), v2::Error> {
        self.kv(&this)?.delete(&key).await.map_err(FromKv::from_kv)
    }

    async fn exists(&mut self, this: Resource<KvHandle>, key: String) -> Result<bool, v2::Error> {
        self.kv(&this)?.exists(&key).await.map_err(FromKv::from_kv)
    }

    async fn get_keys(&mut self, this: Resource<KvHandle>) -> Result<Vec<String>, v2::Error> {
        self.kv(&this)?.get_keys().await.map_err(FromKv::from_kv)
    }

    async fn drop(&mut self, rep: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

// ---- wasi:keyvalue (store, batch, atomics) ----------------------------------

use wasi::keyvalue::{atomics, batch, store as wstore};

impl wstore::Host for HostState {
    async fn open(&mut self, identifier: String) -> Result<Resource<KvHandle>, wstore::Error> {
        let store = open_store(self, &identifier).map_err(|e| match e {
            OpenError::NoSuchStore => wstore::Error::NoSuchStore,
            OpenError::AccessDenied => wstore::Error::AccessDenied,
        })?;
        self.table.push(KvHandle { store }).map_err(table_err)
    }
}

impl wstore::HostBucket for HostState {
    async fn get(&mut self, this: Resource<KvHandle>, key: String) -> Result<Option<Vec<u8>>, wstore::Error> {
        self.kv(&this)?.get(&key).await.map_err(FromKv::from_kv)
    }

    async fn set(&mut self, this: Resource<KvHandle>, key: String, value: Vec<u8>) -> Result<(), wstore::Error> {
        self.kv(&this)?.set(&key, &value).await.map_err(FromKv::from_kv)
    }

    async fn delete(&mut self, this: Resource<KvHandle>, key: String) -> Result<(), wstore::Error> {
        self.kv(&this)?.delete(&key).await.map_err(FromKv::from_kv)
    }

    async fn exists(&mut self, this: Resource<KvHandle>, key: String) -> Result<bool, wstore::Error> {
        self.kv(&this)?.exists(&key).await.map_err(FromKv::from_kv)
    }

    /// Pages through the keys in sorted order; the cursor is the last key of
    /// the previous page, so a page stays correct while keys are added.
    async fn list_keys(&mut self, this: Resource<KvHandle>, cursor: Option<String>) -> Result<wstore::KeyResponse, wstore::Error> {
        let mut keys = self.kv(&this)?.get_keys().await.map_err(FromKv::from_kv)?;
        keys.sort_unstable();
        let start = match &cursor {
            Some(c) => keys.partition_point(|k| k <= c),
            None => 0,
        };
        let page: Vec<String> = keys[start..].iter().take(LIST_PAGE).cloned().collect();
        let next = (start + page.len() < keys.len()).then(|| page.last().cloned()).flatten();
        Ok(wstore::KeyResponse { keys: page, cursor: next })
    }

    async fn drop(&mut self, rep: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<KvHandle>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, wstore::Error> {
        let values = self.kv(&bucket)?.get_many(&keys).await.map_err(FromKv::from_kv)?;
        Ok(keys.into_iter().zip(values).collect())
    }

    async fn set_many(&mut self, bucket: Resource<KvHandle>, key_values: Vec<(String, Vec<u8>)>) -> Result<(), wstore::Error> {
        self.kv(&bucket)?.set_many(&key_values).await.map_err(FromKv::from_kv)
    }

    async fn delete_many(&mut self, bucket: Resource<KvHandle>, keys: Vec<String>) -> Result<(), wstore::Error> {
        self.kv(&bucket)?.delete_many(&keys).await.map_err(FromKv::from_kv)
    }
}

impl atomics::Host for HostState {
    async fn increment(&mut self, bucket: Resource<KvHandle>, key: String, delta: i64) -> Result<i64, wstore::Error> {
        self.kv(&bucket)?.increment(&key, delta).await.map_err(FromKv::from_kv)
    }

    /// Writes only if the value is still the one the handle saw. On a
    /// conflict the guest gets a fresh handle holding the new value, ready
    /// for its next attempt.
    async fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let handle = self
            .table
            .delete(cas)
            .map_err(|e| atomics::CasError::StoreError(wstore::Error::Other(format!("invalid cas handle: {e}"))))?;
        let swapped = handle
            .store
            .compare_and_swap(&handle.key, handle.current.as_deref(), &value)
            .await
            .map_err(|e| atomics::CasError::StoreError(wstore::Error::from_kv(e)))?;
        if swapped {
            return Ok(());
        }
        let current = handle.store.get(&handle.key).await.map_err(|e| atomics::CasError::StoreError(wstore::Error::from_kv(e)))?;
        let fresh = CasHandle { store: handle.store, key: handle.key, current };
        let fresh = self
            .table
            .push(fresh)
            .map_err(|e| atomics::CasError::StoreError(wstore::Error::Other(e.to_string())))?;
        Err(atomics::CasError::CasFailed(fresh))
    }
}

impl atomics::HostCas for HostState {
    async fn new(&mut self, bucket: Resource<KvHandle>, key: String) -> Result<Resource<CasHandle>, wstore::Error> {
        let store = self.kv(&bucket)?;
        let current = store.get(&key).await.map_err(FromKv::from_kv)?;
        self.table.push(CasHandle { store, key, current }).map_err(table_err)
    }

    async fn current(&mut self, this: Resource<CasHandle>) -> Result<Option<Vec<u8>>, wstore::Error> {
        let h = self.table.get(&this).map_err(table_err::<wstore::Error>)?;
        Ok(h.current.clone())
    }

    async fn drop(&mut self, rep: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
