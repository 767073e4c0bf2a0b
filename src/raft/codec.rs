//! The one binary encoding of everything Quorum stores or sends between members: log entries,
//! votes, snapshots and peer messages. bincode, because both ends are always this build of
//! Quorum; etcd's wire formats (protobuf) are only for clients.

use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub fn encode<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    bincode::serialize(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub fn decode<T: DeserializeOwned>(b: &[u8]) -> io::Result<T> {
    bincode::deserialize(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
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
}
