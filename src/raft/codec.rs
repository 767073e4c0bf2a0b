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
