//! Status and trailer checks, against numbers a real etcdctl printed.
