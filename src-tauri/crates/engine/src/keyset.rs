//! A compact set of keys for uniqueness and reference checks over million-row files:
//! the key bytes live in one arena, the table holds 16-byte slots. Memory grows with
//! the keys kept, never with the file's other bytes.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Where a key was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub file: u16,
    pub row: u32,
    pub valid: bool,
}

/// 12 bytes: keys and slugs are validated to at most 255 bytes before they get here.
#[derive(Clone, Copy)]
struct Slot {
    off: u32,
    row: u32,
    file: u16,
    len: u8,
    valid: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("more than 4 GiB of keys in one run, or a key over 255 bytes; split the files")]
pub struct KeySpaceFull;

#[derive(Default)]
pub struct KeySet {
    arena: Vec<u8>,
    table: HashTable<Slot>,
    hasher: foldhash::fast::FixedState,
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn bytes<'a>(arena: &'a [u8], s: &Slot) -> &'a [u8] {
        &arena[s.off as usize..s.off as usize + usize::from(s.len)]
    }

    /// Make room for `keys` more keys of `bytes` bytes in all.
    pub fn reserve(&mut self, keys: usize, bytes: usize) {
        let Self {
            arena,
            table,
            hasher,
        } = self;
        arena.reserve(bytes);
        table.reserve(keys, |s| hasher.hash_one(Self::bytes(arena, s)));
    }

    pub fn get(&self, key: &[u8]) -> Option<Seen> {
        let h = self.hasher.hash_one(key);
        self.table
            .find(h, |s| Self::bytes(&self.arena, s) == key)
            .map(|s| Seen {
                file: s.file,
                row: s.row,
                valid: s.valid,
            })
    }

    /// Insert `key` unless present; returns where it was seen before, if it was.
    pub fn insert(&mut self, key: &[u8], seen: Seen) -> Result<Option<Seen>, KeySpaceFull> {
        let h = self.hasher.hash_one(key);
        let Self {
            arena,
            table,
            hasher,
        } = self;
        if let Some(s) = table.find(h, |s| Self::bytes(arena, s) == key) {
            return Ok(Some(Seen {
                file: s.file,
                row: s.row,
                valid: s.valid,
            }));
        }
        let off = u32::try_from(arena.len()).map_err(|_| KeySpaceFull)?;
        let len = u8::try_from(key.len()).map_err(|_| KeySpaceFull)?;
        off.checked_add(u32::from(len)).ok_or(KeySpaceFull)?;
        arena.extend_from_slice(key);
        let slot = Slot {
            off,
            len,
            row: seen.row,
            file: seen.file,
            valid: seen.valid,
        };
        table.insert_unique(h, slot, |s| hasher.hash_one(Self::bytes(arena, s)));
        Ok(None)
    }

    /// Mark a key inserted earlier as belonging to an invalid row.
    pub fn set_invalid(&mut self, key: &[u8]) {
        let h = self.hasher.hash_one(key);
        let Self { arena, table, .. } = self;
        if let Some(s) = table.find_mut(h, |s| Self::bytes(arena, s) == key) {
            s.valid = false;
        }
    }

    /// A dense id for a key (its first row when it was inserted with `row = id`).
    pub fn intern(&mut self, key: &[u8]) -> Result<u32, KeySpaceFull> {
        let next = u32::try_from(self.len()).map_err(|_| KeySpaceFull)?;
        let seen = Seen {
            file: 0,
            row: next,
            valid: true,
        };
        Ok(self.insert(key, seen)?.map_or(next, |s| s.row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_insert_wins_and_later_ones_report_it() {
        let mut k = KeySet::new();
        let a = Seen {
            file: 0,
            row: 1,
            valid: true,
        };
        let b = Seen {
            file: 1,
            row: 9,
            valid: false,
        };
        assert_eq!(k.insert(b"SH1", a).ok(), Some(None));
        assert_eq!(k.insert(b"SH2", b).ok(), Some(None));
        assert_eq!(k.insert(b"SH1", b).ok(), Some(Some(a)));
        assert_eq!(k.get(b"SH2"), Some(b));
        assert_eq!(k.get(b"SH3"), None);
        k.set_invalid(b"SH1");
        assert_eq!(k.get(b"SH1"), Some(Seen { valid: false, ..a }));
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn survives_growth_with_many_keys() {
        let mut k = KeySet::new();
        for i in 0..100_000u32 {
            let key = format!("EP-{i}");
            assert_eq!(k.intern(key.as_bytes()).ok(), Some(i));
        }
        for i in (0..100_000u32).step_by(997) {
            assert_eq!(k.intern(format!("EP-{i}").as_bytes()).ok(), Some(i));
        }
        assert_eq!(k.len(), 100_000);
    }
}
