//! etcd's bucket layout: Quorum's state written and read back, and a real etcd 3.4 file read.
