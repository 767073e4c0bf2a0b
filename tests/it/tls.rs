//! The HA guide's recipes over https, against Quorum and real etcd alike: members started with
//! etcd's TLS flags (client and peer certificates, both required), etcdctl with `--cacert
//! --cert --key` for put/get and `endpoint health --cluster`, and a client without a
//! certificate refused by both.

use super::procs::{etcd_available, etcdctl, ProcCluster, Program};
use quorum::tls::TestPki;

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn https_recipes_work_with_certificates_and_refuse_clients_without_one() {
    // Goal: one test, two programs: what works (and fails) over TLS on etcd 3.4 does the same
    // on Quorum. Method: 3-member process clusters of each, the same certificates and flags.
    if !etcd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate().unwrap().write_to(dir.path()).unwrap();
    for program in [Program::Quorum, Program::Etcd] {
        let c = ProcCluster::start_with(program, 3, Some(&pki));
        let certs: Vec<&str> = c.members[0]
            .etcdctl_tls
            .iter()
            .map(String::as_str)
            .collect();
        let eps: Vec<String> = c.members.iter().map(|m| m.client_url.clone()).collect();
        assert!(eps.iter().all(|e| e.starts_with("https://")));
        let with = |args: &[&str]| {
            let all: Vec<&str> = certs.iter().copied().chain(args.iter().copied()).collect();
            etcdctl(&eps[1], &all, None)
        };

        let put = with(&["put", "tls-key", "tls-value"]);
        assert!(put.status.success(), "{program:?}: {}", text(&put));
        let get = with(&["get", "tls-key", "--print-value-only"]);
        assert_eq!(
            String::from_utf8_lossy(&get.stdout).trim(),
            "tls-value",
            "{program:?}: {}",
            text(&get)
        );

        let health = with(&["endpoint", "health", "--cluster"]);
        assert!(health.status.success(), "{program:?}: {}", text(&health));
        for ep in &eps {
            assert!(
                text(&health).contains(&format!("{ep} is healthy")),
                "{program:?}: {}",
                text(&health)
            );
        }

        // The CA but no client certificate: the handshake is refused, and etcdctl reports
        // what it reports against etcd.
        let ca = format!("--cacert={}", pki.ca.display());
        let refused = etcdctl(
            &eps[0],
            &[&ca, "--command-timeout=2s", "put", "no-cert", "x"],
            None,
        );
        assert!(!refused.status.success(), "{program:?}: {}", text(&refused));
        assert!(
            text(&refused).contains("context deadline exceeded"),
            "{program:?}: {}",
            text(&refused)
        );
        let after = with(&["get", "no-cert", "--count-only", "-w", "json"]);
        assert!(
            !String::from_utf8_lossy(&after.stdout).contains("\"count\":1"),
            "{program:?}: a refused client wrote nothing"
        );
    }
}
