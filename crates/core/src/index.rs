//! Collection indexes: the id lists that make every list route cost
//! O(page) instead of a scan of all keys.
//!
//! A collection (`servers`, `project/{p}/servers`, `server_types`,
//! `server/{s}/tasks`; names in [`crate::keys`]) is a chain of pages in
//! the key-value store:
//!
//! | key | value |
//! |---|---|
//! | `index/{c}/page/{n}` | [`IdList`]: up to [`INDEX_PAGE_SIZE`] ids, creation order |
//! | `index/{c}/head` | [`IndexHead`]: the number of the last page (a hint, see below) |
//! | `index/{c}/at/{id}` | [`IndexPos`]: the page holding `id`, so a marker is found in O(1) |
//!
//! Appending is a compare-and-swap on the last page; when it is full, the
//! writer creates the next page (CAS on an absent key, so two writers
//! cannot both create it) and then raises the head. A writer that dies in
//! between leaves the head one page behind: the next append finds the full
//! page, moves on, and repairs the head, and readers always probe past the
//! head until a page is absent. Pages are never deleted, so a missing page
//! is the end of the chain. Removing an id is a CAS on its page (pages may
//! become sparse or empty; they are skipped).
//!
//! Reading a page of a collection reads the marker's position, then index
//! pages from there, and loads records in small batches until the page
//! (plus one look-ahead item, which decides whether `next` exists) is
//! full. Unfiltered lists therefore read O(limit) records whatever the size
//! of the collection; a filter reads as many records as it has to skip.
//! An id whose record is missing (written just before its record, or left
//! by a crash between the two) is skipped, never shown.
//!
//! The logic is generic over [`Records`], implemented by the components'
//! key-value wrapper (`vnext_guest::kv::Kv`) and, in the tests below, by an
//! in-memory store with the same compare-and-swap contract.

use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::paging::PageQuery;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::keys::IdList;

/// Ids per index page: one page read serves any default-sized list page,
/// and a page record stays around 10 KiB.
pub const INDEX_PAGE_SIZE: usize = 256;

/// Records loaded per batch while filling a list page with a filter.
const LOAD_BATCH: usize = 64;

/// JSON records with compare-and-swap: what an index needs from a store.
pub trait Records {
    fn get_json<T: DeserializeOwned>(&self, key: &str) -> ApiResult<Option<T>>;
    /// Several records; `None` where a key is absent, in the order of `keys`.
    fn get_many<T: DeserializeOwned>(&self, keys: &[String]) -> ApiResult<Vec<Option<T>>>;
    /// Unconditional write (records only their creator writes).
    fn put_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<()>;
    /// Unconditional writes in one call (one store transaction where the
    /// store has them): a launch of 1,000 servers is a few calls, not 1,000.
    fn put_many<T: Serialize>(&self, entries: &[(String, T)]) -> ApiResult<()>;
    /// Creates `key` only if absent; `Ok(false)` if it exists.
    fn create_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<bool>;
    /// Read-modify-write with compare-and-swap, retried on lost races.
    fn update_json<T, F>(&self, key: &str, f: F) -> ApiResult<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> ApiResult<T>;
    fn delete(&self, key: &str) -> ApiResult<()>;
}

/// Value of `index/{c}/head`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexHead {
    pub last_page: u64,
}

/// Value of `index/{c}/at/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPos {
    pub page: u64,
}

/// What [`Index::new_collection`] writes: the first page and the
/// position of each id (no head record: an absent head means page 0).
pub struct NewCollection {
    pub page: (String, IdList),
    pub positions: Vec<(String, IndexPos)>,
}

/// Which end a list starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Creation order (collections of resources).
    OldestFirst,
    /// Newest first (task histories).
    NewestFirst,
}

/// The records of a collection that starts with `ids` (at most one
/// page), for the caller to write with [`Records::put_many`] together
/// with others. Only for a collection no one else can reach yet (the
/// task history of a server whose record is not written): it replaces
/// the compare-and-swap of [`Index::append_many`] by plain writes.
pub fn new_collection(name: &str, ids: &[String]) -> ApiResult<NewCollection> {
    if ids.len() > INDEX_PAGE_SIZE {
        return Err(ApiError::internal(format!(
            "a new collection holds at most {INDEX_PAGE_SIZE} ids, not {}; report this",
            ids.len()
        )));
    }
    Ok(NewCollection {
        page: (keys::index_page(name, 0), IdList { ids: ids.to_vec() }),
        positions: ids.iter().map(|id| (keys::index_at(name, id), IndexPos { page: 0 })).collect(),
    })
}

fn bad_marker(m: &str) -> ApiError {
    ApiError::bad_request(format!(
        "marker {m:?} is not an item of this collection; use the id of the last item of the previous page"
    ))
    .field("marker")
}

/// One collection's index in a store.
pub struct Index<'a, R: Records> {
    store: &'a R,
    name: String,
}

impl<'a, R: Records> Index<'a, R> {
    pub fn new(store: &'a R, name: impl Into<String>) -> Self {
        Index { store, name: name.into() }
    }

    fn head(&self) -> ApiResult<u64> {
        Ok(self.store.get_json::<IndexHead>(&keys::index_head(&self.name))?.unwrap_or_default().last_page)
    }

    fn page(&self, n: u64) -> ApiResult<Option<IdList>> {
        self.store.get_json(&keys::index_page(&self.name, n))
    }

    /// The number of the last existing page (probing past a lagging head);
    /// `None` for an empty collection.
    fn last_page(&self) -> ApiResult<Option<u64>> {
        let mut n = self.head()?;
        if self.page(n)?.is_none() {
            return Ok(n.checked_sub(1).filter(|_| n > 0));
        }
        while self.page(n + 1)?.is_some() {
            n += 1;
        }
        Ok(Some(n))
    }

    /// Adds `id` at the end (idempotent for an id already in the last page).
    pub fn append(&self, id: &str) -> ApiResult<()> {
        self.append_many(&[id.to_string()])
    }

    /// Adds `ids` at the end, in order, filling the last page with one
    /// compare-and-swap (a launch of many servers costs a few page writes,
    /// not one per server). Ids already in the page written are skipped.
    pub fn append_many(&self, ids: &[String]) -> ApiResult<()> {
        let mut n = self.head()?;
        let mut rest: &[String] = ids;
        let mut placed: Vec<(u64, &[String])> = Vec::new();
        while !rest.is_empty() {
            let mut took = 0;
            self.store.update_json(&keys::index_page(&self.name, n), |p: Option<IdList>| {
                let mut p = p.unwrap_or_default();
                let room = INDEX_PAGE_SIZE.saturating_sub(p.ids.len());
                took = room.min(rest.len());
                for id in &rest[..took] {
                    if !p.ids.contains(id) {
                        p.ids.push(id.clone());
                    }
                }
                Ok(p)
            })?;
            placed.push((n, &rest[..took]));
            rest = &rest[took..];
            if !rest.is_empty() {
                n += 1;
            }
        }
        let positions: Vec<(String, IndexPos)> = placed
            .into_iter()
            .flat_map(|(page, ids)| ids.iter().map(move |id| (keys::index_at(&self.name, id), IndexPos { page })))
            .collect();
        self.store.put_many(&positions)?;
        if n > self.head()? {
            self.store.update_json(&keys::index_head(&self.name), |h: Option<IndexHead>| {
                let last_page = h.unwrap_or_default().last_page.max(n);
                Ok(IndexHead { last_page })
            })?;
        }
        Ok(())
    }

    /// Takes `id` out of the collection; nothing happens if it is not in it.
    pub fn remove(&self, id: &str) -> ApiResult<()> {
        let at = keys::index_at(&self.name, id);
        let Some(pos) = self.store.get_json::<IndexPos>(&at)? else {
            return Ok(());
        };
        let page_key = keys::index_page(&self.name, pos.page);
        if self.page(pos.page)?.is_some() {
            self.store.update_json(&page_key, |p: Option<IdList>| {
                let mut p = p.unwrap_or_default();
                p.ids.retain(|x| x != id);
                Ok(p)
            })?;
        }
        self.store.delete(&at)
    }

    /// Where a list continues after `marker`: the page, and where in it to
    /// begin (oldest first: the first index to read; newest first: the end
    /// of the slice read backwards). `None` within the pair means the whole
    /// page; `None` overall, an empty collection.
    fn start(&self, order: Order, marker: Option<&str>) -> ApiResult<Option<(u64, Option<usize>)>> {
        let Some(m) = marker else {
            return Ok(match order {
                Order::OldestFirst => Some((0, Some(0))),
                Order::NewestFirst => self.last_page()?.map(|n| (n, None)),
            });
        };
        let bad = || bad_marker(m);
        let pos: IndexPos = self.store.get_json(&keys::index_at(&self.name, m))?.ok_or_else(bad)?;
        let page = self.page(pos.page)?.ok_or_else(bad)?;
        let i = page.ids.iter().position(|x| x == m).ok_or_else(bad)?;
        Ok(Some(match order {
            Order::OldestFirst => (pos.page, Some(i + 1)),
            // Newest first walks a page backwards from just before the marker.
            Order::NewestFirst => (pos.page, Some(i)),
        }))
    }

    /// One list page: the records (loaded from `key_of(id)`, kept when
    /// `keep` says so) after `q.marker`, at most `q.limit`, and the marker
    /// of the next page if another matching record exists.
    ///
    /// The marker must be an item whose record the caller may see
    /// (`visible`), or it is a 400 exactly like an unknown id, so a marker
    /// never reveals that something exists. The list's filters do not apply
    /// to it: a walk goes on when its last item stopped matching meanwhile.
    pub fn list<T>(
        &self,
        order: Order,
        q: &PageQuery,
        key_of: impl Fn(&str) -> String,
        visible: impl Fn(&T) -> bool,
        keep: impl Fn(&T) -> bool,
        id_of: impl Fn(&T) -> &str,
    ) -> ApiResult<(Vec<T>, Option<String>)>
    where
        T: DeserializeOwned,
    {
        let want = q.limit + 1; // one look-ahead decides `next`
        let mut found: Vec<T> = Vec::with_capacity(want.min(LOAD_BATCH * 4));
        let Some((mut n, mut from)) = self.start(order, q.marker.as_deref())? else {
            return Ok((found, None));
        };
        if let Some(m) = q.marker.as_deref()
            && !self.store.get_json::<T>(&key_of(m))?.is_some_and(|r| visible(&r))
        {
            return Err(bad_marker(m));
        }
        let last = match order {
            Order::OldestFirst => self.head()?,
            Order::NewestFirst => 0,
        };
        'pages: loop {
            let page = match self.page(n)? {
                Some(p) => p,
                // Past the head and absent: the end of the chain.
                None if order == Order::OldestFirst && n >= last => break,
                None => IdList::default(),
            };
            let ids: Vec<&String> = match order {
                Order::OldestFirst => page.ids.iter().skip(from.unwrap_or(0)).collect(),
                Order::NewestFirst => {
                    let end = from.unwrap_or(page.ids.len()).min(page.ids.len());
                    page.ids[..end].iter().rev().collect()
                }
            };
            for chunk in ids.chunks(LOAD_BATCH.min(want - found.len()).max(1)) {
                let chunk_keys: Vec<String> = chunk.iter().map(|id| key_of(id)).collect();
                for record in self.store.get_many::<T>(&chunk_keys)?.into_iter().flatten() {
                    if keep(&record) {
                        found.push(record);
                        if found.len() == want {
                            break 'pages;
                        }
                    }
                }
            }
            match order {
                Order::OldestFirst => n += 1,
                Order::NewestFirst if n == 0 => break,
                Order::NewestFirst => n -= 1,
            }
            from = None;
        }
        let next = if found.len() > q.limit {
            found.truncate(q.limit);
            found.last().map(|t| id_of(t).to_string())
        } else {
            None
        };
        Ok((found, next))
    }
}

#[cfg(test)]
pub(crate) mod memory {
    //! An in-memory [`Records`] with real compare-and-swap (versions), for
    //! tests of the index and of anything built on it.
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct MemStore {
        pub map: Mutex<BTreeMap<String, (u64, Vec<u8>)>>,
        pub reads: std::sync::atomic::AtomicUsize,
    }

    impl MemStore {
        fn raw(&self, key: &str) -> Option<(u64, Vec<u8>)> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.map.lock().unwrap().get(key).cloned()
        }
    }

    impl Records for MemStore {
        fn get_json<T: DeserializeOwned>(&self, key: &str) -> ApiResult<Option<T>> {
            Ok(self.raw(key).map(|(_, b)| serde_json::from_slice(&b).unwrap()))
        }
        fn get_many<T: DeserializeOwned>(&self, keys: &[String]) -> ApiResult<Vec<Option<T>>> {
            keys.iter().map(|k| self.get_json(k)).collect()
        }
        fn put_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<()> {
            let mut m = self.map.lock().unwrap();
            let v = m.get(key).map_or(0, |(v, _)| v + 1);
            m.insert(key.to_string(), (v, serde_json::to_vec(value).unwrap()));
            Ok(())
        }
        fn put_many<T: Serialize>(&self, entries: &[(String, T)]) -> ApiResult<()> {
            entries.iter().try_for_each(|(k, v)| self.put_json(k, v))
        }
        fn create_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<bool> {
            let mut m = self.map.lock().unwrap();
            if m.contains_key(key) {
                return Ok(false);
            }
            m.insert(key.to_string(), (0, serde_json::to_vec(value).unwrap()));
            Ok(true)
        }
        fn update_json<T, F>(&self, key: &str, mut f: F) -> ApiResult<T>
        where
            T: Serialize + DeserializeOwned,
            F: FnMut(Option<T>) -> ApiResult<T>,
        {
            loop {
                let seen = self.raw(key);
                let next = f(seen.as_ref().map(|(_, b)| serde_json::from_slice(b).unwrap()))?;
                // Let racing threads interleave between the read and the swap.
                std::thread::yield_now();
                let mut m = self.map.lock().unwrap();
                if m.get(key).map(|(v, _)| *v) == seen.as_ref().map(|(v, _)| *v) {
                    let v = seen.map_or(0, |(v, _)| v + 1);
                    m.insert(key.to_string(), (v, serde_json::to_vec(&next).unwrap()));
                    return Ok(next);
                }
            }
        }
        fn delete(&self, key: &str) -> ApiResult<()> {
            self.map.lock().unwrap().remove(key);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemStore;
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::atomic::Ordering;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        id: String,
        even: bool,
    }

    fn key(id: &str) -> String {
        format!("rec/{id}")
    }

    fn fill(store: &MemStore, name: &str, n: usize) -> Vec<String> {
        let ix = Index::new(store, name);
        (0..n)
            .map(|i| {
                let id = format!("{i:06}");
                store.put_json(&key(&id), &Rec { id: id.clone(), even: i % 2 == 0 }).unwrap();
                ix.append(&id).unwrap();
                id
            })
            .collect()
    }

    /// Every id of the collection, following `next` markers page by page.
    fn walk(store: &MemStore, name: &str, order: Order, limit: usize, keep: impl Fn(&Rec) -> bool + Copy) -> Vec<String> {
        let ix = Index::new(store, name);
        let mut q = PageQuery { limit, marker: None };
        let mut all = Vec::new();
        loop {
            let (page, next) = ix.list(order, &q, key, |_| true, keep, |r: &Rec| r.id.as_str()).unwrap();
            assert!(page.len() <= limit);
            all.extend(page.into_iter().map(|r| r.id));
            match next {
                Some(m) => q.marker = Some(m),
                None => return all,
            }
        }
    }

    #[test]
    fn pages_walk_the_whole_collection_in_creation_order() {
        let s = MemStore::default();
        let ids = fill(&s, "c", 3 * INDEX_PAGE_SIZE + 7);
        assert_eq!(walk(&s, "c", Order::OldestFirst, 100, |_| true), ids);
        assert_eq!(walk(&s, "c", Order::OldestFirst, 1000, |_| true), ids);
        let page_sized = walk(&s, "c", Order::OldestFirst, INDEX_PAGE_SIZE, |_| true);
        assert_eq!(page_sized, ids);
    }

    #[test]
    fn newest_first_walks_backwards_across_pages() {
        let s = MemStore::default();
        let mut ids = fill(&s, "c", 2 * INDEX_PAGE_SIZE + 3);
        ids.reverse();
        for limit in [1, 7, INDEX_PAGE_SIZE, 1000] {
            assert_eq!(walk(&s, "c", Order::NewestFirst, limit, |_| true), ids, "limit {limit}");
        }
    }

    #[test]
    fn next_is_absent_exactly_when_nothing_follows() {
        let s = MemStore::default();
        fill(&s, "c", 4);
        let ix = Index::new(&s, "c");
        let (p, next) = ix.list(Order::OldestFirst, &PageQuery { limit: 4, marker: None }, key, |_: &Rec| true, |_: &Rec| true, |r| r.id.as_str()).unwrap();
        assert_eq!((p.len(), next), (4, None));
        let (p, next) = ix.list(Order::OldestFirst, &PageQuery { limit: 3, marker: None }, key, |_: &Rec| true, |_: &Rec| true, |r| r.id.as_str()).unwrap();
        assert_eq!((p.len(), next.as_deref()), (3, Some("000002")));
        let empty = Index::new(&s, "none");
        let (p, next) = empty.list(Order::NewestFirst, &PageQuery { limit: 3, marker: None }, key, |_: &Rec| true, |_: &Rec| true, |r| r.id.as_str()).unwrap();
        assert!(p.is_empty() && next.is_none());
    }

    #[test]
    fn filters_skip_records_and_keep_paging_stable() {
        let s = MemStore::default();
        let ids = fill(&s, "c", INDEX_PAGE_SIZE + 50);
        let evens: Vec<String> = ids.iter().step_by(2).cloned().collect();
        assert_eq!(walk(&s, "c", Order::OldestFirst, 9, |r| r.even), evens);
        assert!(walk(&s, "c", Order::OldestFirst, 9, |_| false).is_empty());
    }

    #[test]
    fn an_unfiltered_page_reads_o_of_limit_records_whatever_the_size() {
        let reads = |n: usize| {
            let s = MemStore::default();
            let ids = fill(&s, "c", n);
            let ix = Index::new(&s, "c");
            s.reads.store(0, Ordering::Relaxed);
            let q = PageQuery { limit: 20, marker: Some(ids[n / 2].clone()) };
            ix.list(Order::OldestFirst, &q, key, |_: &Rec| true, |_: &Rec| true, |r| r.id.as_str()).unwrap();
            s.reads.load(Ordering::Relaxed)
        };
        let (small, large) = (reads(1_000), reads(20_000));
        assert!(large <= small + 2, "a page read {small} records at 1k and {large} at 20k");
        assert!(small < 40, "{small} reads for a page of 20");
    }

    #[test]
    fn unknown_or_removed_markers_are_400() {
        let s = MemStore::default();
        let ids = fill(&s, "c", 10);
        let ix = Index::new(&s, "c");
        let list = |m: &str| {
            ix.list(Order::OldestFirst, &PageQuery { limit: 5, marker: Some(m.into()) }, key, |_: &Rec| true, |_: &Rec| true, |r| r.id.as_str())
        };
        assert_eq!(list("nope").unwrap_err().field.as_deref(), Some("marker"));
        ix.remove(&ids[3]).unwrap();
        assert_eq!(list(&ids[3]).unwrap_err().status, 400);
        // Another collection's member is not a marker of this one.
        Index::new(&s, "other").append("only-in-other").unwrap();
        assert_eq!(list("only-in-other").unwrap_err().field.as_deref(), Some("marker"));
        assert!(list(&ids[4]).is_ok());
    }

    #[test]
    fn removed_ids_disappear_and_the_rest_keep_their_order() {
        let s = MemStore::default();
        let ids = fill(&s, "c", INDEX_PAGE_SIZE + 10);
        let ix = Index::new(&s, "c");
        // Empty a whole page: the walk must go on past it.
        for id in &ids[..INDEX_PAGE_SIZE] {
            ix.remove(id).unwrap();
        }
        ix.remove("never-there").unwrap();
        assert_eq!(walk(&s, "c", Order::OldestFirst, 3, |_| true), ids[INDEX_PAGE_SIZE..].to_vec());
        let mut rev = ids[INDEX_PAGE_SIZE..].to_vec();
        rev.reverse();
        assert_eq!(walk(&s, "c", Order::NewestFirst, 3, |_| true), rev);
    }

    #[test]
    fn ids_without_records_are_skipped() {
        let s = MemStore::default();
        let ids = fill(&s, "c", 5);
        s.delete(&key(&ids[1])).unwrap();
        assert_eq!(walk(&s, "c", Order::OldestFirst, 2, |_| true), [&ids[0], &ids[2], &ids[3], &ids[4]].map(|s| s.clone()));
    }

    #[test]
    fn a_lagging_head_is_repaired_and_never_hides_pages() {
        let s = MemStore::default();
        let ids = fill(&s, "c", INDEX_PAGE_SIZE + 1);
        // As if the writer of page 1 died before raising the head.
        s.put_json(&keys::index_head("c"), &IndexHead { last_page: 0 }).unwrap();
        assert_eq!(walk(&s, "c", Order::OldestFirst, 100, |_| true), ids);
        assert_eq!(walk(&s, "c", Order::NewestFirst, 1, |_| true)[0], ids[INDEX_PAGE_SIZE]);
        Index::new(&s, "c").append("late").unwrap();
        assert_eq!(s.get_json::<IndexHead>(&keys::index_head("c")).unwrap().unwrap().last_page, 1);
    }

    #[test]
    fn a_marker_must_be_visible_but_need_not_match_the_filters() {
        let s = MemStore::default();
        let ids = fill(&s, "c", 6);
        let ix = Index::new(&s, "c");
        let q = |m: &str| PageQuery { limit: 10, marker: Some(m.to_string()) };
        let odd_ones_hidden = |r: &Rec| r.even;
        // Not visible: refused exactly like an unknown id.
        let hidden = ids.iter().find(|id| !s.get_json::<Rec>(&key(id)).unwrap().unwrap().even).unwrap();
        let e = ix.list(Order::OldestFirst, &q(hidden), key, odd_ones_hidden, |_: &Rec| true, |r| r.id.as_str()).unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("marker")));
        let unknown = ix.list(Order::OldestFirst, &q("nope"), key, odd_ones_hidden, |_: &Rec| true, |r| r.id.as_str()).unwrap_err();
        assert_eq!(e.message.replace(hidden.as_str(), "nope"), unknown.message, "the same answer as an unknown id");
        // Visible but filtered out (it stopped matching): the walk goes on after it.
        let (page, _) = ix.list(Order::OldestFirst, &q(&ids[0]), key, |_: &Rec| true, |r: &Rec| r.id != ids[0], |r| r.id.as_str()).unwrap();
        assert_eq!(page.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), ids[1..].to_vec());
    }

    #[test]
    fn a_new_collection_lists_and_grows_like_an_appended_one() {
        let s = MemStore::default();
        let ids: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        for id in &ids {
            s.put_json(&key(id), &Rec { id: id.clone(), even: true }).unwrap();
        }
        let fresh = new_collection("c", &ids).unwrap();
        s.put_many(&[fresh.page]).unwrap();
        s.put_many(&fresh.positions).unwrap();
        assert_eq!(walk(&s, "c", Order::OldestFirst, 2, |_| true), ids);
        s.put_json(&key("late"), &Rec { id: "late".into(), even: true }).unwrap();
        Index::new(&s, "c").append("late").unwrap();
        assert_eq!(walk(&s, "c", Order::NewestFirst, 2, |_| true)[0], "late");
        Index::new(&s, "c").remove(&ids[2]).unwrap();
        assert_eq!(walk(&s, "c", Order::OldestFirst, 10, |_| true).len(), 5);
        let too_many: Vec<String> = (0..=INDEX_PAGE_SIZE).map(|i| i.to_string()).collect();
        assert!(new_collection("d", &too_many).is_err());
    }

    #[test]
    fn append_many_fills_pages_in_order() {
        let s = MemStore::default();
        fill(&s, "c", 10);
        let more: Vec<String> = (0..2 * INDEX_PAGE_SIZE).map(|i| format!("m{i:05}")).collect();
        for id in &more {
            s.put_json(&key(id), &Rec { id: id.clone(), even: true }).unwrap();
        }
        Index::new(&s, "c").append_many(&more).unwrap();
        let got = walk(&s, "c", Order::OldestFirst, 1000, |_| true);
        assert_eq!(got.len(), 10 + more.len());
        assert_eq!(got[10..], more[..]);
        assert_eq!(walk(&s, "c", Order::NewestFirst, 5, |_| true)[0], more[more.len() - 1]);
    }

    #[test]
    fn concurrent_appends_lose_no_id() {
        let s = std::sync::Arc::new(MemStore::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        let id = format!("{t}-{i:03}");
                        s.put_json(&key(&id), &Rec { id: id.clone(), even: true }).unwrap();
                        Index::new(&*s, "c").append(&id).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let got = walk(&s, "c", Order::OldestFirst, 1000, |_| true);
        assert_eq!(got.len(), 800);
        assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 800, "no duplicates");
        // Every page but the last is full: no page was forked.
        let last = Index::new(&*s, "c").last_page().unwrap().unwrap();
        assert_eq!(last, (800 / INDEX_PAGE_SIZE) as u64);
    }
}
