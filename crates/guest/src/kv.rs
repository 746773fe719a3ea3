//! JSON records in the key-value store `default` (wasi:keyvalue, because it
//! has compare-and-swap). Keys come from `vnext_core::keys`.
//!
//! Store failures are 503 (retryable, with `Retry-After`): the host fails a
//! call within a second or two when the store cannot be reached or written
//! (Redis down, a full disk, a read-only file), with a reason that names
//! the store and never a path. A record that does not parse is 500 naming
//! the key, since only a bug or manual editing can cause it.

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vnext_core::error::{ApiError, ApiResult};

/// The store label every component lists in `key_value_stores`.
pub const STORE_LABEL: &str = "default";
/// Attempts of a compare-and-swap update before giving up with 503.
pub const CAS_ATTEMPTS: usize = 8;

pub struct Kv {
    bucket: store::Bucket,
}

fn store_error(what: &str, key: &str, e: store::Error) -> ApiError {
    let detail = match e {
        store::Error::NoSuchStore => "no such store (is key_value_stores = [\"default\"] set?)".to_string(),
        store::Error::AccessDenied => "access denied to the store".to_string(),
        store::Error::Other(m) => m,
    };
    ApiError::unavailable(format!(
        "the key-value store failed ({what} of {key}: {detail}); retry in a few seconds"
    ))
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("stored record {key} is unreadable ({e}); report this")))
}

fn encode<T: Serialize>(key: &str, value: &T) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| ApiError::internal(format!("cannot encode record {key}: {e}")))
}

impl Kv {
    pub fn open() -> ApiResult<Self> {
        let bucket = store::open(STORE_LABEL).map_err(|e| store_error("open", STORE_LABEL, e))?;
        Ok(Kv { bucket })
    }

    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> ApiResult<Option<T>> {
        match self.bucket.get(key).map_err(|e| store_error("get", key, e))? {
            Some(bytes) => decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Unconditional write: only for records no one else writes concurrently
    /// (a freshly created id). Anything shared goes through [`Kv::update_json`].
    pub fn put_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<()> {
        let bytes = encode(key, value)?;
        self.bucket.set(key, &bytes).map_err(|e| store_error("set", key, e))
    }

    /// Unconditional writes in one `set-many` call (one transaction on
    /// both backends); the same rule as [`Kv::put_json`] applies.
    pub fn put_many<T: Serialize>(&self, entries: &[(String, T)]) -> ApiResult<()> {
        let Some((first, _)) = entries.first() else { return Ok(()) };
        let encoded = entries
            .iter()
            .map(|(k, v)| Ok((k.clone(), encode(k, v)?)))
            .collect::<ApiResult<Vec<_>>>()?;
        batch::set_many(&self.bucket, &encoded).map_err(|e| store_error("set-many", first, e))
    }

    pub fn delete(&self, key: &str) -> ApiResult<()> {
        self.bucket.delete(key).map_err(|e| store_error("delete", key, e))
    }

    /// Several records in one call; `None` where a key is absent.
    pub fn get_many<T: DeserializeOwned>(&self, keys: &[String]) -> ApiResult<Vec<Option<T>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let pairs = batch::get_many(&self.bucket, keys).map_err(|e| store_error("get-many", &keys[0], e))?;
        // The interface does not promise order: look each key up.
        keys.iter()
            .map(|k| match pairs.iter().find(|(pk, _)| pk == k) {
                Some((_, Some(bytes))) => decode(k, bytes).map(Some),
                _ => Ok(None),
            })
            .collect()
    }

    /// Read-modify-write with compare-and-swap: `f` gets the current record
    /// (None if absent) and returns the new one, or an error to abort.
    /// Retried when someone else wrote in between; after [`CAS_ATTEMPTS`]
    /// lost races it gives up with 503.
    pub fn update_json<T, F>(&self, key: &str, mut f: F) -> ApiResult<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> ApiResult<T>,
    {
        let mut cas = atomics::Cas::new(&self.bucket, key).map_err(|e| store_error("cas", key, e))?;
        for _ in 0..CAS_ATTEMPTS {
            let current = match cas.current().map_err(|e| store_error("cas read", key, e))? {
                Some(bytes) => Some(decode::<T>(key, &bytes)?),
                None => None,
            };
            let next = f(current)?;
            match atomics::swap(cas, &encode(key, &next)?) {
                Ok(()) => return Ok(next),
                // Someone else wrote: the error carries a fresh handle.
                Err(atomics::CasError::CasFailed(fresh)) => cas = fresh,
                Err(atomics::CasError::StoreError(e)) => return Err(store_error("cas swap", key, e)),
            }
        }
        Err(ApiError::unavailable(format!("{key} is being changed by others right now; retry the request")))
    }

    /// Creates `key` only if it is absent (a claim). `Ok(false)` when it
    /// already exists, whoever wrote it.
    pub fn create_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<bool> {
        let cas = atomics::Cas::new(&self.bucket, key).map_err(|e| store_error("cas", key, e))?;
        if cas.current().map_err(|e| store_error("cas read", key, e))?.is_some() {
            return Ok(false);
        }
        match atomics::swap(cas, &encode(key, value)?) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(store_error("cas swap", key, e)),
        }
    }
}

/// The collection indexes of `vnext_core::index` run on this store.
impl vnext_core::index::Records for Kv {
    fn get_json<T: DeserializeOwned>(&self, key: &str) -> ApiResult<Option<T>> {
        Kv::get_json(self, key)
    }
    fn get_many<T: DeserializeOwned>(&self, keys: &[String]) -> ApiResult<Vec<Option<T>>> {
        Kv::get_many(self, keys)
    }
    fn put_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<()> {
        Kv::put_json(self, key, value)
    }
    fn put_many<T: Serialize>(&self, entries: &[(String, T)]) -> ApiResult<()> {
        Kv::put_many(self, entries)
    }
    fn create_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<bool> {
        Kv::create_json(self, key, value)
    }
    fn update_json<T, F>(&self, key: &str, f: F) -> ApiResult<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> ApiResult<T>,
    {
        Kv::update_json(self, key, f)
    }
    fn delete(&self, key: &str) -> ApiResult<()> {
        Kv::delete(self, key)
    }
}
