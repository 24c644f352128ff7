//! The one ClickHouse client (the warehouse sink writes with it, the API's analytics read
//! with it): SQL goes as the POST body, inserted rows as JSONEachRow after the
//! `INSERT … FORMAT JSONEachRow` line, reads come back as TabSeparated or JSONEachRow
//! lines. Uses only what ClickHouse 18.16 and current servers share (both checked by
//! scripts/check-clickhouse-sql.sh).
use crate::config::ClickhouseConfig;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Longest server error text kept in an error (ClickHouse appends stack traces).
const ERROR_TEXT_MAX_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ClickhouseError {
    #[error("ClickHouse did not answer: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("ClickHouse refused the request (HTTP {status}): {text}")]
    Refused { status: u16, text: String },
    #[error("ClickHouse answered something unexpected: {0}")]
    Unexpected(String),
}

impl ClickhouseError {
    /// The server's error code, when it refused: 81 unknown database, 60 unknown table, …
    pub fn code(&self) -> Option<u32> {
        match self {
            ClickhouseError::Refused { text, .. } => error_code(text),
            _ => None,
        }
    }

    /// The database or a table does not exist yet: the sink has not applied the schema.
    pub fn is_missing_schema(&self) -> bool {
        matches!(self.code(), Some(81 | 60))
    }
}

/// The error code ClickHouse starts its error text with: `Code: 81, e.displayText() …`
/// on 18.16, `Code: 81. DB::Exception: …` on current versions.
fn error_code(body: &str) -> Option<u32> {
    let rest = body.strip_prefix("Code: ")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

#[derive(Clone)]
pub struct Clickhouse {
    http: reqwest::Client,
    url: String,
    database: String,
    /// Settings sent with every request (`with_setting`).
    settings: Vec<(String, String)>,
}

/// A table sent with one query as external data (an HTTP multipart part): ClickHouse reads
/// it with its TabSeparated parser, where the same values written into the SQL go through
/// the SQL parser, which on 18.16 took ~110 ms for 25,000 UUID literals.
pub struct External<'a> {
    /// The name the query reads it by.
    pub name: &'a str,
    /// Its columns: `id UUID`.
    pub structure: &'a str,
    /// TabSeparated rows, each ending in a newline.
    pub rows: &'a str,
}

/// Separates the multipart parts; never in TabSeparated UUIDs or numbers.
const MULTIPART_BOUNDARY: &str = "referral-external-data";

impl Clickhouse {
    /// Checks the database name is a plain identifier: it is spliced into SQL.
    pub fn new(config: &ClickhouseConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            is_identifier(&config.database),
            "clickhouse.database must be letters, digits and '_' (got {:?})",
            config.database
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()?;
        Ok(Clickhouse {
            http,
            url: config.url.trim_end_matches('/').to_owned(),
            database: config.database.clone(),
            settings: Vec::new(),
        })
    }

    /// The same client with a setting sent on every request (e.g. `max_rows_to_read`).
    pub fn with_setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// `<database>.<table>`, for SQL.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.database)
    }

    /// Runs one statement and returns the response body.
    pub async fn execute(&self, sql: &str) -> Result<String, ClickhouseError> {
        self.execute_with(sql, &[]).await
    }

    pub(crate) async fn execute_with(
        &self,
        sql: &str,
        settings: &[(&str, &str)],
    ) -> Result<String, ClickhouseError> {
        answer(self.request(settings).body(sql.to_owned())).await
    }

    /// Runs `sql`, which reads `external` by its name, and returns the response body.
    pub(crate) async fn execute_with_external(
        &self,
        sql: &str,
        external: &External<'_>,
    ) -> Result<String, ClickhouseError> {
        let structure = format!("{}_structure", external.name);
        let params = [("query", sql), (structure.as_str(), external.structure)];
        let body = format!(
            "--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
             filename=\"{name}\"\r\n\r\n{rows}\r\n--{MULTIPART_BOUNDARY}--\r\n",
            name = external.name,
            rows = external.rows,
        );
        let content_type = format!("multipart/form-data; boundary={MULTIPART_BOUNDARY}");
        let request = self
            .request(&params)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        answer(request).await
    }

    /// A POST to the server with this client's settings and `params`. `wait_end_of_query`
    /// makes the server buffer the answer, so a failure is an HTTP error, never a
    /// truncated body.
    fn request(&self, params: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/", self.url))
            .query(&[("wait_end_of_query", "1")])
            .query(&self.settings)
            .query(params)
    }

    /// A query's result as TabSeparated lines (the SQL must not name a format).
    pub async fn lines(&self, sql: &str) -> Result<Vec<String>, ClickhouseError> {
        let body = self.execute(&format!("{sql} FORMAT TabSeparated")).await?;
        Ok(body.lines().map(str::to_owned).collect())
    }

    /// A query's result as JSONEachRow text (the SQL must not name a format; read it with
    /// `read_json_rows`). 64-bit integers come unquoted, as JSON numbers.
    pub async fn json_lines(&self, sql: &str) -> Result<String, ClickhouseError> {
        self.json_lines_with(sql, &[]).await
    }

    /// `json_lines` with settings for this query only.
    pub async fn json_lines_with(
        &self,
        sql: &str,
        settings: &[(&str, &str)],
    ) -> Result<String, ClickhouseError> {
        let mut all = vec![("output_format_json_quote_64bit_integers", "0")];
        all.extend_from_slice(settings);
        self.execute_with(&format!("{sql} FORMAT JSONEachRow"), &all)
            .await
    }

    /// Whether the server answers `/ping` (bounded by the request timeout).
    pub async fn ping(&self) -> bool {
        let answer = self.http.get(format!("{}/ping", self.url)).send().await;
        matches!(answer, Ok(r) if r.status().is_success())
    }

    /// Inserts JSONEachRow lines into `table` in one request: one block, so the server
    /// takes all of them or none.
    ///
    /// The insert's query id names its rows (`insert_query_id`): while an earlier attempt
    /// with the same rows still runs on the server (its client gave up at
    /// `request_timeout_ms`, and ClickHouse does not cancel an insert whose client went
    /// away), a retry is refused with code 216 and backs off, instead of inserting the
    /// rows a second time once the lookup of what is stored has missed them.
    pub async fn insert(&self, table: &str, rows: &[&str]) -> Result<(), ClickhouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = format!("INSERT INTO {} FORMAT JSONEachRow\n", self.table(table));
        for row in rows {
            body.push_str(row);
            body.push('\n');
        }
        let id = insert_query_id(table, rows);
        self.execute_with(&body, &[("query_id", &id)])
            .await
            .map(drop)
    }
}

/// Each JSONEachRow line of `body` as a `T`.
pub fn read_json_rows<T: DeserializeOwned>(body: &str) -> Result<Vec<T>, ClickhouseError> {
    body.lines()
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| ClickhouseError::Unexpected(format!("a row that does not read: {e}")))
        })
        .collect()
}

/// The query id of an insert of `rows` into `table`: the same rows, the same id.
pub fn insert_query_id(table: &str, rows: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for row in rows {
        digest.update(row.as_bytes());
        digest.update(b"\n");
    }
    format!("insert-{table}-{}", hex::encode(&digest.finalize()[..16]))
}

/// The body of a success, or the server's error as `Refused`.
async fn answer(request: reqwest::RequestBuilder) -> Result<String, ClickhouseError> {
    let response = request.send().await.map_err(ClickhouseError::Unreachable)?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(ClickhouseError::Unreachable)?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(ClickhouseError::Refused {
            status: status.as_u16(),
            text: text.trim().chars().take(ERROR_TEXT_MAX_CHARS).collect(),
        })
    }
}

/// A name that may be spliced into SQL: letters, digits and `_`, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[path = "clickhouse_test.rs"]
mod tests;
