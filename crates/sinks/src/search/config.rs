//! Settings of the search sink (Elasticsearch 7/8, OpenSearch 2/3): where the server is, how a
//! change becomes a document (index, id, full or partial write) and how writes are batched.

use rowbus_core::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How an insert or update is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `index` the full after image, with an external version from the source position: a retried
    /// or reordered older write can never replace a newer document.
    Index,
    /// A partial `update` with `doc_as_upsert`: the row's columns are merged into the document,
    /// keeping fields other writers added. The servers take no external version on an update, so
    /// order rests on the sink's per-document order alone (see docs/search.md).
    Update,
}

/// How the sink proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        user: String,
        password: Secret,
    },
    /// An API key as the server issued it (the base64 of `id:key`), sent as `ApiKey ...`.
    ApiKey(Secret),
}

/// A child table whose rows live as an array field inside its parent's documents (one level deep):
/// `nest = { table = "shop.items", into = "shop.orders", field = "items", parent_key = "order_id" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nest {
    /// The child table, `db.table`.
    pub table: String,
    /// The parent table, `db.table`, whose documents hold the array.
    pub into: String,
    /// The array field of the parent's document.
    pub field: String,
    /// The child's columns that make its parent's document id, in the order of its parts.
    pub parent_key: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSinkConfig {
    /// The server's base URL, such as `http://127.0.0.1:9200`.
    pub url: String,
    /// The index (or alias) of a table: `{db}` and `{table}` replaced, then lowercased.
    pub index: String,
    /// The columns a table's document id is made of (`db.table` to columns); the primary key
    /// otherwise.
    pub id_columns: BTreeMap<String, Vec<String>>,
    /// Between the values of a composite id.
    pub id_separator: String,
    pub write: WriteMode,
    /// Bulk requests in flight at once, documents partitioned by id.
    pub workers: usize,
    /// The most bytes in one bulk request body.
    pub bulk_max_bytes: usize,
    /// Settings and mappings of a table's index (`db.table` to a JSON file), used when the sink
    /// creates the index.
    pub index_settings: BTreeMap<String, PathBuf>,
    pub auth: Auth,
    /// A PEM file of the CA that signed the server's certificate (for `https` URLs).
    pub ca_file: Option<PathBuf>,
    /// Time for one bulk request, from sending to the whole response.
    pub timeout: Duration,
    /// Delete the old index when a rebuild moves the alias (otherwise it only loses the alias).
    pub reindex_delete_old: bool,
    /// Child tables kept inside their parents' documents.
    pub nests: Vec<Nest>,
}

impl SearchSinkConfig {
    /// The index a table's documents go to.
    pub fn index_of(&self, db: &str, table: &str) -> String {
        self.index
            .replace("{db}", db)
            .replace("{table}", table)
            .to_lowercase()
    }

    /// The columns of a table's document id, when configured.
    pub fn id_columns_of(&self, db: &str, table: &str) -> Option<&[String]> {
        self.id_columns
            .get(&format!("{db}.{table}"))
            .map(Vec::as_slice)
    }

    /// The nests a table's rows go into, as a child.
    pub fn nests_of_child<'a>(&'a self, db: &str, table: &str) -> Vec<&'a Nest> {
        self.nests
            .iter()
            .filter(|n| names(&n.table, db, table))
            .collect()
    }

    /// The array fields of a parent table's documents.
    pub fn nest_fields_of(&self, parent: &str) -> Vec<Arc<str>> {
        self.nests
            .iter()
            .filter(|n| n.into == parent)
            .map(|n| Arc::from(n.field.as_str()))
            .collect()
    }

    /// Whether a table's changes go through nesting (as a child, or as a parent of children).
    pub fn is_nested(&self, db: &str, table: &str) -> bool {
        self.nests
            .iter()
            .any(|n| names(&n.table, db, table) || names(&n.into, db, table))
    }
}

/// Whether `name` (`db.table`) names `db`.`table`, without building the name per change.
fn names(name: &str, db: &str, table: &str) -> bool {
    name.len() == db.len() + 1 + table.len()
        && name.starts_with(db)
        && name.ends_with(table)
        && name.as_bytes()[db.len()] == b'.'
}

impl Default for SearchSinkConfig {
    fn default() -> Self {
        SearchSinkConfig {
            url: "http://127.0.0.1:9200".into(),
            index: "{db}.{table}".into(),
            id_columns: BTreeMap::new(),
            id_separator: "_".into(),
            write: WriteMode::Index,
            workers: 4,
            bulk_max_bytes: 5 * 1024 * 1024,
            index_settings: BTreeMap::new(),
            auth: Auth::None,
            ca_file: None,
            timeout: Duration::from_secs(30),
            reindex_delete_old: false,
            nests: Vec::new(),
        }
    }
}
