//! The `quorum` command: `serve` (one member, etcd's flags), `cluster` (a local cluster).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use quorum::cluster::{ClusterSpec, LocalCluster};
use quorum::config::{parse_initial_cluster, ClusterState, Config, TlsConfig};
use quorum::tls::TlsFiles;
use quorum::transport::Transport;
use quorum::Node;

#[derive(Parser)]
#[command(
    name = "quorum",
    version,
    about = "An etcd-compatible cluster store on Raft"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one member; takes etcd's own flags and means the same by them.
    Serve(Box<ServeArgs>),
    /// Run a local cluster in this process on etcd's customary loopback ports, with a live
    /// admin page; `quorum cluster status --admin URL` prints a running cluster's table.
    Cluster(ClusterArgs),
    /// Inject a fault into a running `quorum cluster` through its admin API.
    Fault(FaultArgs),
    /// Load any etcd-compatible endpoint (Quorum or etcd) and report throughput and latency.
    Bench(BenchArgs),
    /// etcd 3.4 snapshot files: `status`, `restore` into a member's data dir, `verify`.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Deterministic simulation: `quorum sim run --seed N ...`, `quorum sim sweep --seeds A..B`.
    #[command(subcommand)]
    Sim(quorum::sim::cli::SimCmd),
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// Print a snapshot's hash, revision, total keys and size, as `etcdctl snapshot status`.
    Status {
        file: PathBuf,
        /// table | json | simple
        #[arg(short = 'w', long = "write-out", default_value = "simple", value_parser = ["simple", "table", "json"])]
        write_out: String,
    },
    /// Build a member's data directory from a snapshot; then `quorum serve` with the same
    /// flags serves its keys at their revisions. Restore every member with its own flags.
    Restore(RestoreArgs),
    /// Restore into a scratch in-process member and compare its key space with the file's.
    Verify {
        file: PathBuf,
        #[arg(long)]
        skip_hash_check: bool,
    },
}

/// etcdctl's `snapshot restore` flags.
#[derive(Parser)]
struct RestoreArgs {
    file: PathBuf,
    #[arg(long, default_value = "default")]
    name: String,
    /// Defaults to `<name>.etcd`; must not exist.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value = "default=http://localhost:2380")]
    initial_cluster: String,
    #[arg(long, default_value = "etcd-cluster")]
    initial_cluster_token: String,
    #[arg(long, default_value = "http://localhost:2380")]
    initial_advertise_peer_urls: String,
    /// Accept a file without etcd's SHA-256 trailer (a raw database copy).
    #[arg(long)]
    skip_hash_check: bool,
}

#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCmd>,
    /// Comma-separated client URLs; clients are spread over them.
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    endpoints: String,
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// HTTP/2 connections the clients share (default: one per client).
    #[arg(long)]
    connections: Option<usize>,
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// put | get | get-serializable
    #[arg(long, default_value = "put", value_parser = ["put", "get", "get-serializable"])]
    workload: String,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Start a 3-member etcd and a 3-member Quorum here, measure both with every workload in
    /// alternating rounds, and print (optionally write) the table and chart.
    Compare {
        /// Requests per load case and round (at least `--per-client` per client).
        #[arg(long, default_value_t = 4000)]
        requests: usize,
        /// Requests per client at least, so that a loaded case runs long enough to measure.
        #[arg(long, default_value_t = 100)]
        per_client: usize,
        /// How many times each case runs on each system; the median round is reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds of puts in the watch fan-out case.
        #[arg(long, default_value_t = 3)]
        fanout_secs: u64,
        /// The etcd binary.
        #[arg(long, default_value = "etcd")]
        etcd: PathBuf,
        /// Replace the results section of this Markdown file (e.g. docs/performance.md).
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Write the chart here (e.g. docs/performance.svg).
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Only the cases whose name contains this text.
        #[arg(long)]
        only: Option<String>,
    },
    /// Watch fan-out: watchers on one prefix while puts arrive at a fixed rate; reports
    /// events delivered and delivery latency.
    Watch {
        #[arg(long, default_value = "http://127.0.0.1:2379")]
        endpoints: String,
        #[arg(long, default_value_t = 1000)]
        watchers: usize,
        #[arg(long, default_value_t = 10)]
        connections: usize,
        #[arg(long, default_value_t = 1000)]
        puts_per_sec: u64,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[derive(Parser)]
struct ServeArgs {
    #[arg(long, default_value = "default")]
    name: String,
    /// Defaults to `<name>.etcd`, as etcd's does.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value = "http://localhost:2379")]
    listen_client_urls: String,
    #[arg(long, default_value = "http://localhost:2379")]
    advertise_client_urls: String,
    #[arg(long, default_value = "http://localhost:2380")]
    listen_peer_urls: String,
    #[arg(long, default_value = "http://localhost:2380")]
    initial_advertise_peer_urls: String,
    /// Extra URLs serving only `/metrics` and `/health` (https uses the client certificate).
    #[arg(long, default_value = "")]
    listen_metrics_urls: String,
    /// Defaults to `<name>=<initial-advertise-peer-urls>`.
    #[arg(long)]
    initial_cluster: Option<String>,
    #[arg(long, default_value = "new", value_parser = ["new", "existing"])]
    initial_cluster_state: String,
    #[arg(long, default_value = "etcd-cluster")]
    initial_cluster_token: String,
    /// Milliseconds between heartbeats.
    #[arg(long, default_value_t = 100)]
    heartbeat_interval: u64,
    /// Milliseconds without a heartbeat before a follower campaigns.
    #[arg(long, default_value_t = 1000)]
    election_timeout: u64,
    /// Committed entries between Raft snapshots.
    #[arg(long, default_value_t = quorum::config::DEFAULT_SNAPSHOT_EVERY_ENTRIES)]
    snapshot_count: u64,
    /// Bytes the key space may hold before writes are refused (0: etcd's 2 GiB).
    #[arg(long, default_value_t = 0)]
    quota_backend_bytes: u64,
    /// Seconds an unused simple auth token lives.
    #[arg(long, default_value_t = 300)]
    auth_token_ttl: u64,
    /// bcrypt cost for user passwords (4..=31).
    #[arg(long, default_value_t = 10)]
    bcrypt_cost: u32,
    #[command(flatten)]
    tls: TlsArgs,
}

/// etcd's TLS flags. Booleans take etcd's (Go's) forms: `--client-cert-auth` or `=true`.
#[derive(clap::Args)]
struct TlsArgs {
    /// Client server TLS certificate file.
    #[arg(long)]
    cert_file: Option<PathBuf>,
    /// Client server TLS key file.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Client server TLS trusted CA file; clients must then present a certificate it signed.
    #[arg(long)]
    trusted_ca_file: Option<PathBuf>,
    /// Refuse clients without a certificate signed by the trusted CA.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    client_cert_auth: bool,
    /// Serve clients with a generated self-signed certificate.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    auto_tls: bool,
    #[arg(long)]
    peer_cert_file: Option<PathBuf>,
    #[arg(long)]
    peer_key_file: Option<PathBuf>,
    #[arg(long)]
    peer_trusted_ca_file: Option<PathBuf>,
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    peer_client_cert_auth: bool,
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    peer_auto_tls: bool,
    /// Comma-separated TLS 1.2 cipher suites (Go's names); empty: the safe defaults.
    #[arg(long, default_value = "")]
    cipher_suites: String,
}

impl TlsArgs {
    fn into_config(self) -> TlsConfig {
        TlsConfig {
            client: TlsFiles {
                cert_file: self.cert_file,
                key_file: self.key_file,
                trusted_ca_file: self.trusted_ca_file,
                client_cert_auth: self.client_cert_auth,
                auto_tls: self.auto_tls,
            },
            peer: TlsFiles {
                cert_file: self.peer_cert_file,
                key_file: self.peer_key_file,
                trusted_ca_file: self.peer_trusted_ca_file,
                client_cert_auth: self.peer_client_cert_auth,
                auto_tls: self.peer_auto_tls,
            },
            cipher_suites: split(&self.cipher_suites),
        }
    }
}

#[derive(Parser)]
struct ClusterArgs {
    /// Number of members (3 or 5 make sense; 1 works too).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Keep state here across runs; by default a fresh temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Serve https with client certificates: a throwaway CA, server and client certificates
    /// are written under the data dir (`tls/`), and the etcdctl line to use is printed.
    #[arg(long)]
    tls: bool,
    /// Port of the admin page and API on 127.0.0.1; when taken, the next free one is used.
    #[arg(long, default_value_t = quorum::admin::DEFAULT_ADMIN_PORT)]
    admin_port: u16,
    #[command(subcommand)]
    action: Option<ClusterAction>,
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Print a running cluster's members, roles, terms, indices and cut links.
    Status {
        /// The admin URL `quorum cluster` printed, e.g. http://127.0.0.1:2378.
        #[arg(long)]
        admin: String,
    },
}

#[derive(Parser)]
struct FaultArgs {
    /// kill | restart | pause (freeze, sockets open) | resume | partition (isolate the member) |
    /// heal (its links; `all` for every link)
    #[arg(value_parser = ["kill", "restart", "pause", "resume", "partition", "heal"])]
    kind: String,
    /// Member names: n1, n2, ...; the fault is applied to each in turn.
    #[arg(required = true)]
    members: Vec<String>,
    /// The admin URL `quorum cluster` printed, e.g. http://127.0.0.1:2378.
    #[arg(long)]
    admin: String,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let advertise_peer = split(&self.initial_advertise_peer_urls);
        let initial_cluster = match &self.initial_cluster {
            Some(s) => parse_initial_cluster(s)?,
            None => vec![(self.name.clone(), advertise_peer.clone())],
        };
        Ok(Config {
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", self.name))),
            name: self.name,
            listen_client_urls: split(&self.listen_client_urls),
            advertise_client_urls: split(&self.advertise_client_urls),
            listen_peer_urls: split(&self.listen_peer_urls),
            listen_metrics_urls: split(&self.listen_metrics_urls),
            initial_advertise_peer_urls: advertise_peer,
            initial_cluster,
            initial_cluster_state: if self.initial_cluster_state == "existing" {
                ClusterState::Existing
            } else {
                ClusterState::New
            },
            initial_cluster_token: self.initial_cluster_token,
            heartbeat_interval_ms: self.heartbeat_interval,
            election_timeout_ms: self.election_timeout,
            snapshot_every_entries: self.snapshot_count,
            snapshot_when_idle: true,
            quota_backend_bytes: match self.quota_backend_bytes {
                0 => quorum::config::DEFAULT_QUOTA_BACKEND_BYTES,
                n => n,
            },
            plants: Default::default(),
            tls: self.tls.into_config(),
            auth: quorum::config::AuthConfig {
                token_ttl: std::time::Duration::from_secs(self.auth_token_ttl),
                bcrypt_cost: self.bcrypt_cost.clamp(
                    quorum::config::BCRYPT_COST_MIN,
                    quorum::config::BCRYPT_COST_MAX,
                ),
            },
        })
    }
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

async fn snapshot(cmd: SnapshotCmd) -> anyhow::Result<()> {
    use quorum::snapshot;
    match cmd {
        SnapshotCmd::Status { file, write_out } => {
            let status = snapshot::status(&read_file(&file)?)
                .with_context(|| format!("{}", file.display()))?;
            print!("{}", status.render(&write_out));
        }
        SnapshotCmd::Restore(args) => {
            let opts = snapshot::RestoreOptions {
                data_dir: args
                    .data_dir
                    .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", args.name))),
                name: args.name,
                initial_cluster: args.initial_cluster,
                initial_cluster_token: args.initial_cluster_token,
                initial_advertise_peer_urls: split(&args.initial_advertise_peer_urls),
                skip_hash_check: args.skip_hash_check,
            };
            let r = snapshot::restore(&read_file(&args.file)?, &opts)
                .with_context(|| format!("restoring {}", args.file.display()))?;
            println!(
                "restored {} into {}: member {:x}, revision {} (compacted at {}), {} keys, {} leases",
                args.file.display(),
                opts.data_dir.display(),
                r.member_id,
                r.revision,
                r.compact_revision,
                r.live_keys,
                r.leases
            );
        }
        SnapshotCmd::Verify {
            file,
            skip_hash_check,
        } => {
            let v = snapshot::verify(&read_file(&file)?, skip_hash_check)
                .await
                .with_context(|| format!("verifying {}", file.display()))?;
            let show = |d: &snapshot::verify::KeySpaceDigest| {
                format!(
                    "hash {:x}, revision {}, {} revisions, {} leases",
                    d.hash, d.revision, d.revisions, d.leases
                )
            };
            println!("file:     {}", show(&v.file));
            println!("restored: {}", show(&v.restored));
            if !v.passed() {
                println!("FAIL: the restored member differs from the snapshot");
                std::process::exit(1);
            }
            println!("PASS");
        }
    }
    Ok(())
}

/// Errors end the program with one line naming the cause, never a backtrace: they are the
/// user's to act on (a missing file, a port in use), not a bug report.
fn main() {
    if let Err(e) = run(Cli::parse().command) {
        eprintln!("quorum: {e:#}");
        std::process::exit(1);
    }
}

fn run(command: Cmd) -> anyhow::Result<()> {
    // The simulator builds its own runtimes, one per simulated host, and must not run inside
    // one; it keeps its own output quiet (its report is the output) unless RUST_LOG asks.
    // A subscriber that takes nothing, rather than none, matters: with none, every span
    // openraft opens falls back to the `log` crate (axum turns on tracing's `log` feature),
    // ~3 % of a simulated run.
    if let Cmd::Sim(sim) = command {
        init_logs("off");
        return quorum::sim::cli::main(sim);
    }
    init_logs("info,openraft=warn,sled=warn,h2=warn,tower=warn");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(command))
}

/// Logs to stderr, filtered by RUST_LOG when it is set and by `default` otherwise.
fn init_logs(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    use quorum::bench::{compare, fanout, load};
    match args.command {
        Some(BenchCmd::Compare {
            requests,
            per_client,
            rounds,
            fanout_secs,
            etcd,
            markdown,
            svg,
            only,
        }) => {
            compare::run(compare::CompareSpec {
                requests,
                per_client,
                rounds,
                fanout_secs,
                etcd,
                quorum: std::env::current_exe().context("finding this binary")?,
                markdown,
                svg,
                only,
            })
            .await?;
        }
        Some(BenchCmd::Watch {
            endpoints,
            watchers,
            connections,
            puts_per_sec,
            seconds,
        }) => {
            let report = fanout::run(fanout::FanoutSpec {
                endpoints: split(&endpoints),
                watchers,
                connections,
                puts_per_sec,
                duration: std::time::Duration::from_secs(seconds),
                value_bytes: 256,
            })
            .await?;
            println!("{} watchers={watchers}", report.summary());
        }
        None => {
            let workload = match args.workload.as_str() {
                "get" => load::Workload::GetLinearizable,
                "get-serializable" => load::Workload::GetSerializable,
                _ => load::Workload::Put,
            };
            let report = load::run(load::LoadSpec {
                endpoints: split(&args.endpoints),
                clients: args.clients,
                connections: args.connections.unwrap_or(args.clients),
                requests: args.requests,
                value_bytes: args.value_bytes,
                workload,
            })
            .await?;
            println!(
                "{} clients={} workload={}",
                report.summary(),
                args.clients,
                args.workload
            );
        }
    }
    Ok(())
}

async fn serve(command: Cmd) -> anyhow::Result<()> {
    match command {
        Cmd::Sim(_) => unreachable!("handled before the runtime starts"),
        Cmd::Bench(args) => bench(args).await?,
        Cmd::Snapshot(cmd) => snapshot(cmd).await?,
        Cmd::Serve(args) => {
            let config = args.into_config()?;
            let node = Node::start(config, Transport::default())
                .await
                .context("starting member")?;
            tokio::select! {
                _ = ctrl_c() => node.stop().await,
                why = node.stopped() => {
                    node.stop().await;
                    // A removed member exits cleanly, as etcd's does, so a service manager
                    // that restarts failed units leaves it down.
                    if why != quorum::node::Stopped::Removed {
                        anyhow::bail!("member stopped: {why}");
                    }
                    eprintln!("member stopped: {why}");
                }
            }
        }
        Cmd::Fault(args) => {
            for member in &args.members {
                let path = format!("/api/fault/{}/{member}", args.kind);
                let (code, body) = quorum::admin::call(&args.admin, "POST", &path)
                    .await
                    .with_context(|| format!("reaching the admin API at {}", args.admin))?;
                anyhow::ensure!(code == 200, "{body}");
                println!("{body}");
            }
        }
        Cmd::Cluster(ClusterArgs {
            action: Some(ClusterAction::Status { admin }),
            ..
        }) => {
            let (code, body) = quorum::admin::call(&admin, "GET", "/api/status")
                .await
                .with_context(|| format!("reaching the admin API at {admin}"))?;
            anyhow::ensure!(code == 200, "{body}");
            let status: quorum::admin::ClusterStatus =
                serde_json::from_str(&body).context("decoding the admin API's status")?;
            print!("{}", quorum::admin::render_table(&status));
        }
        Cmd::Cluster(args) => {
            let mut spec = ClusterSpec::new(args.nodes);
            spec.data_dir = args.data_dir;
            spec.tls = args.tls;
            let cluster = LocalCluster::start(spec)
                .await
                .context("starting cluster")?;
            println!(
                "quorum: {}-member cluster running; Ctrl-C stops it.",
                args.nodes
            );
            println!("{} endpoint status -w table", cluster.etcdctl());
            let listener = quorum::admin::bind(args.admin_port)
                .await
                .context("binding the admin port")?;
            let cluster = std::sync::Arc::new(tokio::sync::Mutex::new(cluster));
            let (addr, admin) = quorum::admin::spawn(listener, cluster.clone())?;
            println!("admin page: http://{addr}/ (quorum fault kill n1 --admin http://{addr})");
            ctrl_c().await;
            admin.abort();
            // The admin task held the other handle; once aborted, this one is the last.
            let _ = admin.await;
            match std::sync::Arc::try_unwrap(cluster) {
                Ok(c) => c.into_inner().shutdown().await,
                Err(_) => tracing::warn!("cluster still shared at exit; members stop on drop"),
            }
        }
    }
    Ok(())
}
