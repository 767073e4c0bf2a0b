//! Building the key map in one go, from keys in order (a snapshot, an etcd backend): the way a
//! restarted or caught-up member gets its whole state.
//!
//! imbl's B-tree splits a full node in half, so keys inserted in ascending order leave every
//! node half full: each key paid for two slots. Inserting every other key first and the rest
//! after fills them: the first pass leaves nodes of eight, and each key of the second pass
//! lands between two of the first in a node with room for it. Only the layout changes; the map
//! is the same whatever the order.

use imbl::OrdMap;

use super::key_history::KeyHistory;
use super::stored_key::StoredKey;

/// The map holding `entries`; later entries win over earlier ones with the same key.
pub(super) fn key_map(entries: Vec<(StoredKey, KeyHistory)>) -> OrdMap<StoredKey, KeyHistory> {
    let ascending = entries.windows(2).all(|w| w[0].0 < w[1].0);
    if !ascending {
        // Duplicates must keep their order, so no interleaving.
        return entries.into_iter().collect();
    }
    let mut map = OrdMap::new();
    let mut second = Vec::with_capacity(entries.len() / 2);
    for (i, (key, history)) in entries.into_iter().enumerate() {
        if i % 2 == 0 {
            map.insert(key, history);
        } else {
            second.push((key, history));
        }
    }
    for (key, history) in second {
        map.insert(key, history);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&str]) -> Vec<(StoredKey, KeyHistory)> {
        keys.iter()
            .map(|k| (k.as_bytes().into(), KeyHistory::default()))
            .collect()
    }

    #[test]
    fn holds_every_key_in_order() {
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i:04}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let map = key_map(entries(&refs));
        let got: Vec<&[u8]> = map.keys().map(|k| &**k).collect();
        let want: Vec<&[u8]> = refs.iter().map(|k| k.as_bytes()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unordered_input_keeps_the_last_of_a_key() {
        let mut input = entries(&["b", "a", "b"]);
        let mut last = KeyHistory::default();
        last.push(super::super::key_history::Version {
            mod_revision: 7,
            sub: 0,
            live: None,
        });
        input[2].1 = last.clone();
        let map = key_map(input);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&b"b"[..]), Some(&last));
    }
}
