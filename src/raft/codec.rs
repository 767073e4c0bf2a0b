//! The one binary encoding of everything Quorum stores or sends between members: log entries,
//! votes, snapshots and peer messages. bincode, because both ends are always this build of
//! Quorum; etcd's wire formats (protobuf) are only for clients.

use std::io::{self, Read, Write};

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub fn encode<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    bincode::serialize(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub fn decode<T: DeserializeOwned>(b: &[u8]) -> io::Result<T> {
    bincode::deserialize(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The length `encode` would return, found without encoding.
pub fn encoded_len<T: Serialize>(v: &T) -> io::Result<u64> {
    bincode::serialized_size(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `encode`, written to `w` as it goes.
pub fn encode_into<T: Serialize>(w: &mut dyn Write, v: &T) -> io::Result<()> {
    bincode::serialize_into(w, v).map_err(io::Error::other)
}

/// `decode` of the `len` bytes `r` reads. No length inside them is believed past `len`, so
/// damage is refused rather than allocated for.
pub fn decode_from<T: DeserializeOwned>(r: &mut dyn Read, len: u64) -> io::Result<T> {
    bincode::options()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(len)
        .deserialize_from(r)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::PutRequest;

    /// `PutRequest` as serde derived it before its bytes fields coded as bytes.
    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct PutRequestAsSequences {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
        prev_kv: bool,
        ignore_value: bool,
        ignore_lease: bool,
    }

    #[test]
    fn bytes_fields_encode_as_they_did_as_sequences() {
        // Goal: log entries written before bytes fields coded as bytes read back unchanged.
        let req = PutRequest {
            key: b"k".to_vec(),
            value: vec![7; 300],
            lease: 9,
            prev_kv: true,
            ignore_value: false,
            ignore_lease: true,
        };
        let old = PutRequestAsSequences {
            key: req.key.clone(),
            value: req.value.clone(),
            lease: 9,
            prev_kv: true,
            ignore_value: false,
            ignore_lease: true,
        };
        let bytes = encode(&old).unwrap();
        assert_eq!(encode(&req).unwrap(), bytes);
        assert_eq!(decode::<PutRequest>(&bytes).unwrap(), req);
    }

    #[test]
    fn a_stream_codes_as_bytes_do_and_a_length_past_its_end_is_refused() {
        // Goal: snapshots streamed into and out of their file are the bytes `encode` gives,
        // and a damaged length inside them is an error, not an allocation of exabytes.
        let req = PutRequest {
            key: b"k".to_vec(),
            value: vec![7; 300],
            ..Default::default()
        };
        let bytes = encode(&req).unwrap();
        let mut streamed = Vec::new();
        encode_into(&mut streamed, &req).unwrap();
        assert_eq!(streamed, bytes);
        assert_eq!(encoded_len(&req).unwrap(), bytes.len() as u64);
        let len = bytes.len() as u64;
        assert_eq!(
            decode_from::<PutRequest>(&mut &bytes[..], len).unwrap(),
            req
        );
        // The value's length follows the key's (eight bytes, then "k").
        let mut bad = bytes.clone();
        bad[9..17].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode_from::<PutRequest>(&mut &bad[..], len).is_err());
    }
}
