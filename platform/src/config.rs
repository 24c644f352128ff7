//! Layered configuration: defaults, then a TOML file, then `REFERRAL_*` environment
//! variables (`__` separates sections), then the conventional `DATABASE_URL`,
//! `NATS_URL` and `CLICKHOUSE_URL`. Every bound the system has is named here.
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use schemas::Plan;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

mod checks;
mod defaults;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub nats: NatsConfig,
    pub clickhouse: ClickhouseConfig,
    pub http: HttpConfig,
    pub ingest: IngestConfig,
    pub auth: AuthConfig,
    pub processor: ProcessorConfig,
    pub live: LiveConfig,
    pub reports: ReportsConfig,
    pub plan: Plan,
    pub log: LogConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// A pooled connection idle at least this long is pinged (one round trip) before it is
    /// handed out, since Postgres may have ended it meanwhile; one used more recently is
    /// handed out as it is (sqlx would ping every one: a round trip per statement).
    pub ping_idle_after_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// One server or a cluster: comma-separated URLs (`nats://a:4222,nats://b:4222`); the
    /// client connects to any and moves to another when it is lost.
    pub url: String,
    /// Prefix for stream names and subjects, so several deployments (or tests) share a server.
    pub prefix: String,
    pub duplicate_window_secs: u64,
    /// Publishes awaiting their PubAck at once (async-nats stalls past ~5,000).
    pub max_acks_in_flight: usize,
    pub stream_max_bytes: i64,
    /// Copies JetStream keeps of each stream: 1 on one server, 3 on a three-node cluster
    /// (a minority of nodes may then be lost). Applied when a stream is created; at start-up
    /// an existing stream keeps its replicas if it has more (an operator's choice stands).
    pub num_replicas: usize,
    /// The server sends a heartbeat on an idle pull consumer this often; two missed in a row
    /// mean the consumer was lost (its leader moved or died) and the pull is reopened.
    pub pull_heartbeat_ms: u64,
    /// How long one pull request waits at the server before it is renewed.
    pub pull_expires_ms: u64,
    /// Longest one attempt to reopen a lost pull consumer waits for JetStream's answer
    /// (while its new leader is being elected nobody answers).
    pub pull_reopen_timeout_ms: u64,
    /// First wait before a lost pull consumer is reopened again; it doubles per failure.
    pub pull_reopen_backoff_first_ms: u64,
    /// Longest wait before a lost pull consumer is reopened again after a failed attempt.
    pub pull_reopen_backoff_max_ms: u64,
    /// Longest wait for a NATS server to accept a connection (each attempt).
    pub connect_timeout_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickhouseConfig {
    pub enabled: bool,
    pub url: String,
    pub database: String,
    pub batch_max_rows: usize,
    /// Payload bytes gathered per sink batch (a message carries up to a processor
    /// batch's worth of entries, so messages alone do not bound the work).
    pub batch_max_bytes: usize,
    pub batch_max_wait_ms: u64,
    /// First wait after ClickHouse failed; it doubles up to `retry_backoff_max_ms`.
    pub retry_backoff_first_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// The sink's consumer: a batch not acked in this long is redelivered (the sink keeps
    /// a batch it is still writing in progress).
    pub ack_wait_secs: u64,
    /// Longest one ClickHouse HTTP request (insert, lookup, analytics read) may take.
    pub request_timeout_ms: u64,
    /// How long a program-wide analytics answer (top earners, purchases per shop,
    /// conversion) is served again to every admin asking the same: one query per window
    /// however many ask, concurrent askers waiting for the one in flight. Those read the
    /// whole warehouse (seconds at 10M entries); 0 asks ClickHouse every time.
    pub analytics_cache_ms: u64,
    /// Distinct program-wide questions (route and range) kept at once; past it a new
    /// question is asked of ClickHouse uncached.
    pub analytics_cache_max_entries: usize,
    /// Analytics queries under way at once in one API process; the rest wait their turn
    /// in arrival order. ClickHouse shares the machine's cores between the queries it runs,
    /// so more at once makes the slowest answers slower without answering more
    /// (docs/performance.md, stop 35).
    pub analytics_max_concurrent_queries: usize,
    /// Months (partitions of the tables by time) one insert may span: ClickHouse refuses
    /// an insert block over `max_partitions_per_insert_block` (100 by default on current
    /// servers), and a batch whose purchases carry shops' `occurred_at` times from many
    /// months would be refused and retried for ever, so the sink splits it.
    pub partitions_per_insert: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where `referral api` (and `referral all`, with ingest routes merged in) listens.
    pub api_addr: SocketAddr,
    /// Where `referral ingest` listens when run as its own role.
    pub ingest_addr: SocketAddr,
    pub body_limit_bytes: usize,
    /// A request's deadline (past it a 503 `request_timeout`), and the `statement_timeout`
    /// of the pools that serve requests (docs/operations.md, "Postgres connections").
    pub request_timeout_ms: u64,
    /// A connection that has not sent a whole request head within this long is closed: a
    /// client sending half a header would otherwise hold its socket (a file) forever. It
    /// also closes a keep-alive connection idle for this long.
    pub header_read_timeout_ms: u64,
    /// Connections one listener holds open (live streams included); past it a new one is
    /// answered 503 `too_many_connections` and closed. Lowered at start to fit the
    /// open-file limit less `reserved_files`.
    pub max_connections: usize,
    /// Connections one client address (an IPv4 address, an IPv6 /64) may hold open on a
    /// listener, so one host cannot take every place of `max_connections`; past it its
    /// new connection is answered 429 `too_many_connections_from_address` and closed.
    /// 0: no bound per address (behind a proxy every client has the proxy's address).
    pub max_connections_per_address: usize,
    /// Open files kept free beside connections: Postgres and NATS connections, files.
    pub reserved_files: usize,
    /// Longest a write to a client may wait for the client to read: past it the connection
    /// is closed (a live stream too; its client resumes with `Last-Event-ID`).
    pub write_stall_timeout_ms: u64,
    /// Largest request head (request line and headers) a connection may buffer; a larger
    /// one is answered 431. At least 8,192 (hyper's floor).
    pub max_header_bytes: usize,
    pub max_batch_purchases: usize,
    /// Requests per second per authenticated caller (shop, user, admin) or, without a
    /// credential, per client address; with this burst. Live streams count too.
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    /// Failed authentications per second per client address, with this burst; past it the
    /// address is answered 429 without looking its credentials up.
    pub auth_failures_per_sec: u32,
    pub auth_failures_burst: u32,
    /// Requests (live streams aside) one listener serves at once; past it a request is
    /// answered 503 `overloaded` at once.
    pub max_concurrent_requests: usize,
    /// Of those, what one shop, admin or client address without a credential may hold;
    /// past it 429 `too_many_in_flight`.
    pub max_in_flight_per_caller: usize,
    /// What one user's token may hold (a person's dashboard asks a few at once).
    pub max_in_flight_per_user: usize,
    /// Graph writes (signups, moves, status changes) one caller may have queued for the
    /// process's one turn; its others wait behind them, not before other callers'.
    pub graph_writes_per_caller: usize,
    /// How long one `/readyz` result (Postgres, NATS, ClickHouse) is reused.
    pub readiness_cache_ms: u64,
    /// Longest one readiness probe may take before it counts as down.
    pub readiness_probe_timeout_ms: u64,
}

/// Group commit at the edge: concurrent purchases stored as one stream message.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Requests waiting to join a group.
    pub group_commit_queue: usize,
    /// Purchases in one stored message.
    pub group_commit_max_purchases: usize,
    /// Groups awaiting their PubAck at once.
    pub group_commit_in_flight: usize,
    /// Order ids reserved by one INSERT (concurrent requests share it).
    pub reserve_max_group: usize,
    /// Reservation INSERTs under way at once (each holds a pool connection).
    pub reserve_in_flight: usize,
    /// Items of one batch request judged and queued for reservation at once.
    pub batch_items_in_flight: usize,
    /// Times a reservation group runs again after losing a race with another writer (a
    /// deadlock or serialization failure) before its requests get a 503.
    pub reserve_retries: u32,
    /// Purchases per second one shop may send, single or in batches, every item counted
    /// (`[http] rate_limit_per_sec` counts requests, so a batch of 500 would cost one);
    /// with this burst. Past it 429 `rate_limited` with `Retry-After`.
    pub purchases_per_sec_per_shop: u32,
    pub purchases_burst_per_shop: u32,
    /// Places refunds take in memory (after their order's turn) before a pooled
    /// connection: at most this many connections held by refunds in a process.
    pub refund_turns: usize,
    /// Bytes of one shop's purchases and refunds this edge stored that may wait in the
    /// PURCHASES stream at once; past it that shop alone gets 429 `backlog_full` until the
    /// processor has settled some. The default is an eighth of the default
    /// `nats.stream_max_bytes`, so one shop cannot fill the stream every shop shares; a
    /// share larger than the stream counts as the stream.
    pub backlog_bytes_per_shop: u64,
    /// How often the edge reads how far the processor has drained the stream.
    pub backlog_refresh_ms: u64,
    /// Direct referrals one shop may sign up under a user another shop (or an admin)
    /// signed up; past it 409 `shop_referral_limit_reached`. Referrals cross shops, but a
    /// shop cannot fill all of another shop's user's places (the plan's
    /// `max_direct_referrals`, 8) and lock everyone else out of them. 0: none at all.
    pub referrals_per_shop_under_others: u8,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            group_commit_queue: 10_000,
            group_commit_max_purchases: 1_000,
            // One group at a time each: on two shared cores concurrent groups only contend,
            // and a single group in flight grows to everything that arrived meanwhile
            // (single requests at 64 connections: 4,510–4,685/s with 4 and 4, 5,001–5,620/s
            // with 2 and 2, 5,152–5,903/s with 1 and 1; docs/performance.md).
            group_commit_in_flight: 1,
            reserve_max_group: 500,
            reserve_in_flight: 1,
            batch_items_in_flight: 8,
            reserve_retries: 3,
            // Twice the throughput target (20,000/s): a bound on one shop, not a tuning.
            purchases_per_sec_per_shop: 40_000,
            purchases_burst_per_shop: 80_000,
            // A quarter of the default pool (`database.max_connections`, 16).
            refund_turns: 4,
            backlog_bytes_per_shop: 128 * 1024 * 1024,
            backlog_refresh_ms: 200,
            referrals_per_shop_under_others: 2,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 secret, at least `MIN_SECRET_BYTES`; never logged. `REFERRAL_AUTH__JWT_SECRET`.
    pub jwt_secret: String,
    /// Lifetime of the tokens `referral token` and `referral demo` issue.
    pub token_ttl_secs: u64,
    /// Tokens whose lifetime (`exp - iat`) is longer are refused.
    pub max_token_lifetime_secs: u64,
    pub issuer: String,
    /// Keys the hash under which signups' `external_ref` is kept (never the reference
    /// itself), at least `MIN_SECRET_BYTES`. `REFERRAL_AUTH__PSEUDONYM_KEY`; changing it
    /// forgets which references were seen.
    pub pseudonym_key: String,
    /// Development only: accept the built-in (public) secrets, in a debug build and only
    /// while every listener is on loopback. `REFERRAL_AUTH__ALLOW_DEV_SECRETS=true`.
    pub allow_dev_secrets: bool,
    /// Verified shop keys kept in memory (each process), so a request needs no Postgres.
    pub shop_key_cache_size: usize,
    /// How long a verified shop key is trusted without asking Postgres again: a revoked
    /// key stops working within this bound.
    pub shop_key_cache_ttl_ms: u64,
    /// How often each process reads the token revocations (`referral token --revoke`,
    /// `POST /v1/admin/users/{id}/tokens/revoke`): a revoked token is refused within it.
    pub revocations_refresh_ms: u64,
    /// A bearer credential that may read `/metrics` and nothing else (for a Prometheus
    /// scraper), at least `MIN_SECRET_BYTES`; empty: only admin tokens read `/metrics`.
    /// `REFERRAL_AUTH__METRICS_TOKEN`; never logged.
    pub metrics_token: String,
}

/// The shortest JWT secret or pseudonym key a service starts with.
pub const MIN_SECRET_BYTES: usize = 32;
/// Built-in secrets: public (they are in the source), so refused unless `allow_dev_secrets`.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me";
pub const DEV_PSEUDONYM_KEY: &str = "dev-only-pseudonym-key-change-me";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// Batches applied at once by one processor process (each worker keeps its own copy
    /// of the referral graph).
    pub workers: usize,
    pub batch_max_messages: usize,
    /// Payload bytes per batch (messages may carry groups of purchases).
    pub batch_max_bytes: usize,
    /// How long a worker that has a message waits for more before applying its batch;
    /// 0: it takes only what has already arrived.
    pub batch_max_wait_ms: u64,
    pub max_ack_pending: i64,
    pub ack_wait_secs: u64,
    /// First wait after a failed batch; it doubles up to `retry_backoff_max_ms`.
    pub retry_backoff_first_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Failures of a whole batch, with the database answering, before its messages are
    /// applied one at a time to find the one at fault (processor/src/isolate.rs).
    pub isolate_after_failures: u32,
    /// Attempts for one message on its own before it is dead-lettered.
    pub attempts_alone: u32,
    /// User events read from the outbox per query while catching the graph up.
    pub graph_sync_page: i64,
    /// Entries per `ledger.entries` message (one batch's entries travel in a few stored
    /// messages, not one each; ~450 bytes per entry keeps a message far below NATS's max payload).
    pub entries_per_message: usize,
    /// Advisory locks a batch takes on its orders (shared for purchases, exclusive for
    /// refunds) are on this many buckets of the (shop, order) hash, so a batch of any size
    /// holds at most this many locks: Postgres's shared lock table holds about
    /// `max_locks_per_transaction × max_connections` (6,400 by default) for everyone.
    pub order_lock_buckets: u32,
    /// Chaos knob for tests, never for production: every n-th committed batch stops the
    /// processor with an error after the Postgres commit (alternately before publishing
    /// its entries and before acking), as a crash there would. `None` (the default) disables it.
    pub crash_after_commit_every: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    pub keepalive_secs: u64,
    /// Entries held per connected user for its clients (one allocation of this many
    /// slots per user); a client further behind is caught up from Postgres instead.
    pub client_buffer: usize,
    pub max_connections_per_user: usize,
    pub max_connections_total: usize,
    /// Entries read from Postgres per query when a client resumes or fills a gap.
    pub replay_page: usize,
    /// Wait before reopening the relay's stream consumer after it failed.
    pub reopen_delay_ms: u64,
    /// After this long without a message, the relay checks whether the stream holds
    /// entries it has not seen; one it still has not seen at the next check means a
    /// consumer gone quiet, reopened.
    pub stall_check_ms: u64,
    /// Largest WebSocket message (and frame) a client may send; clients have nothing to
    /// say, and without a bound one fragmented message may buffer 64 MiB per socket.
    pub ws_max_message_bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    pub default_page_size: i64,
    pub max_page_size: i64,
    /// Tree depth when the request names none (at most `max_tree_depth`).
    pub default_tree_depth: u8,
    pub max_tree_depth: u8,
    pub max_tree_nodes: i64,
    /// Users known to exist kept in memory, so a report asks Postgres once per user, not
    /// per request (users are never deleted); 0 keeps none.
    pub known_users_cache: usize,
    /// Report reads under way at once in this process; the rest wait their turn in arrival
    /// order. About twice the database's cores: more runs more queries than it has cores
    /// to run them, and the operating system then slices them, which makes the slowest
    /// requests slower without answering more (docs/performance.md, stop 34).
    pub max_concurrent_reads: usize,
    /// Of those, the reads of one user's data at once (a user's own token may have
    /// `http.max_in_flight_per_user` requests in flight); more is the same as
    /// `max_concurrent_reads`.
    pub max_concurrent_reads_per_user: usize,
    /// Ledger positions one filtered history page (a level, a time range) examines at
    /// most. Entries the filter skips are read too, so without a bound a page asking for
    /// a rare level walked every entry of the user; a page that reached the bound before
    /// filling says where to go on (`next_cursor`), with fewer items, even none.
    pub history_max_scan: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub filter: String,
    pub json: bool,
}

impl Config {
    /// Defaults, then the file (if given or named by `REFERRAL_CONFIG`), then environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let env_file = std::env::var("REFERRAL_CONFIG").ok();
        if let Some(path) = file.map(Path::to_path_buf).or(env_file.map(Into::into)) {
            anyhow::ensure!(path.exists(), "config file {} not found", path.display());
            fig = fig.merge(Toml::file(path));
        }
        fig = fig
            .merge(Env::prefixed("REFERRAL_").ignore(&["CONFIG"]).split("__"))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::raw().only(&["NATS_URL"]).map(|_| "nats.url".into()))
            .merge(
                Env::raw()
                    .only(&["CLICKHOUSE_URL"])
                    .map(|_| "clickhouse.url".into()),
            );
        let config: Config = fig.extract()?;
        config.validate()?;
        Ok(config)
    }
}
