use super::*;
use rowbus_mysql::config::OnUnknownDdl;

const GOOD: &str = r#"
data_dir = "/tmp/rowbus-test"

[sources.shop]
type = "mysql"
url = "mysql://repl@127.0.0.1:3307"
server_id = 4242
include = ["shop.*"]
exclude = ["shop.audit_*"]
start = "mysql-bin.000002:4"

[sinks.archive]
type = "file"
path = "./changes.jsonl"
fsync = "never"

[sinks.screen]
type = "stdout"
"#;

fn errors_of(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// The field each error names (the part before its first colon).
fn fields_of(errors: &[String]) -> Vec<&str> {
    errors
        .iter()
        .map(|e| e.split(':').next().unwrap())
        .collect()
}

#[test]
fn accepts_a_full_config() {
    let config = parse(GOOD).unwrap();
    assert_eq!(config.source.mysql().unwrap().name, "shop");
    assert_eq!(config.source.mysql().unwrap().port, 3307);
    assert_eq!(config.source.mysql().unwrap().user, "repl");
    assert_eq!(config.source.mysql().unwrap().server_id, 4242);
    assert!(config
        .source
        .mysql()
        .unwrap()
        .tables
        .matches("shop", "orders"));
    assert!(!config
        .source
        .mysql()
        .unwrap()
        .tables
        .matches("shop", "audit_x"));
    assert_eq!(config.sinks.len(), 2);
    assert_eq!(config.checkpoint_interval, Duration::from_secs(1));
    // Batch sizes default by sink type.
    let batches: Vec<(&str, usize)> = config
        .sinks
        .iter()
        .map(|s| (s.name.as_str(), s.batch_max_events))
        .collect();
    assert_eq!(batches, [("archive", 10_000), ("screen", 1_000)]);
}

#[test]
fn wrong_type_names_the_field() {
    let text = GOOD.replace("server_id = 4242", "server_id = \"x\"");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("sources.shop.server_id: invalid type: string"),
        "{errors:?}"
    );
}

#[test]
fn unknown_field_names_the_field() {
    let text = GOOD.replace("fsync = \"never\"", "fsync = \"never\"\ncolour = \"red\"");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("sinks.archive.colour: unknown field `colour`"),
        "{errors:?}"
    );
}

#[test]
fn missing_required_field_names_it() {
    let text = GOOD.replace("server_id = 4242\n", "");
    let errors = errors_of(&text);
    assert_eq!(
        errors,
        vec!["sources.shop.server_id: missing required field".to_string()]
    );
}

#[test]
fn reports_every_error_at_once() {
    let text = GOOD
        .replace("start = \"mysql-bin.000002:4\"", "start = \"tomorrow\"")
        .replace(
            "fsync = \"never\"",
            "fsync = \"never\"\ntables = [\"nodot\"]",
        )
        .replace("type = \"stdout\"", "type = \"carrier-pigeon\"");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("sources.shop.start: `tomorrow`"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("sinks.archive.tables[0]: `nodot`"),
        "{errors:?}"
    );
    assert!(
        errors[2].starts_with("sinks.screen.type: unknown type `carrier-pigeon`"),
        "{errors:?}"
    );
}

#[test]
fn password_in_url_is_refused() {
    let text = GOOD.replace("repl@", "repl:secret@");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("sources.shop.url: contains a password"),
        "{errors:?}"
    );
    assert!(
        !errors[0].contains("secret"),
        "the password must not be echoed: {errors:?}"
    );
}

#[test]
fn password_env_must_be_set() {
    let text = GOOD.replace(
        "server_id = 4242",
        "server_id = 4242\npassword_env = \"ROWBUS_TEST_UNSET_VAR\"",
    );
    let errors = errors_of(&text);
    assert_eq!(
        errors,
        vec![
            "sources.shop.password_env: environment variable ROWBUS_TEST_UNSET_VAR is not set"
                .to_string()
        ]
    );
}

#[test]
fn unknown_top_level_field() {
    let errors = errors_of(&format!("colour = 1\n{GOOD}"));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("colour: unknown field"), "{errors:?}");
}

#[test]
fn bad_duration_and_toml_syntax() {
    let text = GOOD.replace("server_id = 4242", "server_id = 4242\nheartbeat = \"soon\"");
    assert!(errors_of(&text)[0].starts_with("sources.shop.heartbeat: `soon` is not a duration"));
    assert!(errors_of("[sources")[0].starts_with("not valid TOML"));
}

#[test]
fn names_must_be_safe_for_file_names() {
    let text = GOOD.replace("[sources.shop]", "[sources.\"../shop\"]");
    let errors = errors_of(&text);
    assert_eq!(
        errors,
        vec!["sources.../shop: a name may use only letters, digits, `_` and `-`".to_string()]
    );
}

#[test]
fn malformed_url_is_not_echoed() {
    let text = GOOD.replace(
        "mysql://repl@127.0.0.1:3307",
        "mysql://repl@host:secret-ish",
    );
    let errors = errors_of(&text);
    assert_eq!(
        errors,
        vec!["sources.shop.url: is not of the form mysql://USER@HOST:PORT".to_string()]
    );
}

#[test]
fn schema_options_are_read_and_checked() {
    let config = parse(GOOD).unwrap();
    assert_eq!(
        config.source.mysql().unwrap().on_unknown_ddl,
        OnUnknownDdl::Stop
    );
    assert!(config.sinks.iter().all(|s| !s.schema_changes));
    let text = GOOD
        .replace("start = ", "on_unknown_ddl = \"refresh\"\nstart = ")
        .replace(
            "fsync = \"never\"",
            "fsync = \"never\"\nschema_changes = true",
        );
    let config = parse(&text).unwrap();
    assert_eq!(
        config.source.mysql().unwrap().on_unknown_ddl,
        OnUnknownDdl::Refresh
    );
    assert!(config
        .sinks
        .iter()
        .any(|s| s.name == "archive" && s.schema_changes));
    let errors = errors_of(&GOOD.replace("start = ", "on_unknown_ddl = \"skip\"\nstart = "));
    assert_eq!(
        errors,
        ["sources.shop.on_unknown_ddl: unknown value `skip`, expected stop or refresh"]
    );
}

#[test]
fn sink_delivery_settings_are_read_and_checked() {
    let text = GOOD.replace(
        "fsync = \"never\"",
        "fsync = \"never\"\nmax_attempts = 3\ndegraded_after = 2\non_failure = \"skip_event\"\nmax_failures = 5\nmax_failures_within = \"10s\"\nmax_event_bytes = 1000\nreplay_failures_on_start = true",
    );
    let config = parse(&text).unwrap();
    let archive = config.sinks.iter().find(|s| s.name == "archive").unwrap();
    assert_eq!(archive.delivery.max_attempts, Some(3));
    assert_eq!(archive.delivery.degraded_after, 2);
    assert_eq!(
        archive.delivery.on_failure,
        rowbus_core::delivery::OnFailure::SkipEvent
    );
    assert_eq!(archive.delivery.max_failures, 5);
    assert_eq!(
        archive.delivery.max_failures_within,
        Duration::from_secs(10)
    );
    assert!(archive.replay_failures_on_start);
    let bad = GOOD.replace(
        "fsync = \"never\"",
        "fsync = \"never\"\nmax_attempts = 0\ndegraded_after = 0\non_failure = \"drop\"\nmax_failures_within = \"soon\"\nmax_event_bytes = 0",
    );
    let mut errors = errors_of(&bad);
    errors.sort();
    let fields = fields_of(&errors);
    assert_eq!(
        fields,
        [
            "sinks.archive.degraded_after",
            "sinks.archive.max_attempts",
            "sinks.archive.max_event_bytes",
            "sinks.archive.max_failures_within",
            "sinks.archive.on_failure",
        ],
        "{errors:?}"
    );
    let typo = errors_of(&GOOD.replace("fsync = \"never\"", "fsync = \"never\"\nmax_attempt = 1"));
    assert!(
        typo[0].starts_with("sinks.archive.max_attempt: unknown field")
            && typo[0].contains("every sink has: tables, batch_max_events"),
        "{typo:?}"
    );
    let shared = GOOD.replace(
        "type = \"stdout\"",
        "type = \"file\"\npath = \"./changes.jsonl\"",
    );
    assert_eq!(
        errors_of(&shared),
        ["sinks.screen.path: is also the path of sink `archive`; give each file sink its own file"]
    );
}

#[test]
fn database_sinks_are_read_and_checked() {
    let text = GOOD.replace(
        "[sinks.screen]\ntype = \"stdout\"",
        "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://rowbus@127.0.0.1:5432/reporting\"\nschema = \"copy_{db}\"\nworkers = 2\neffectively_once = true\n\n[sinks.my]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306\"\nstate_database = \"rowbus\"\neffectively_once = true",
    );
    let config = parse(&text).unwrap();
    let pg = config.sinks.iter().find(|s| s.name == "pg").unwrap();
    let SinkKind::Sql(sql) = &pg.kind else {
        panic!()
    };
    assert_eq!(
        (sql.database.as_str(), sql.workers, sql.effectively_once),
        ("reporting", 2, true)
    );
    assert_eq!(pg.batch_max_events, 10_000);
    assert_eq!(
        sql.target_of("shop", "orders"),
        ("copy_shop".to_string(), "orders".to_string())
    );
    let bad = GOOD.replace(
        "[sinks.screen]\ntype = \"stdout\"",
        "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://u:secret@h/db\"\nworkers = 0\n\n[sinks.my]\ntype = \"mysql\"\nurl = \"mysql://root@h\"\neffectively_once = true",
    );
    let mut errors = errors_of(&bad);
    errors.sort();
    assert_eq!(
        errors,
        [
            "sinks.my.state_database: required with effectively_once: the database that holds rowbus_applied",
            "sinks.pg.url: contains a password; remove it from the URL and set password_env or password_file",
            "sinks.pg.workers: must be between 1 and 64",
        ]
    );
}

#[test]
fn transforms_are_compiled_when_the_config_loads() {
    let text = format!(
        "{GOOD}\n[[sinks.screen.transforms]]\nroute = [\"archive\"]\n\n[[transforms]]\nfilter = '''row.id > 1 &&\n  row.status =='''\n\n[[transforms]]\nmask = [\"email\"]\nbogus = 1\n"
    );
    assert_eq!(
        errors_of(&text),
        [
            "transforms[1].bogus: unknown field `bogus`, expected one of `keep`, `drop`, `rename`, `rename_table`, `rename_db`, `mask`, `hash`, `filter`, `key`, `partition`, `set`, `route`, `copy`, `script`, `script_file`, `tables`, `if`, `mask_with`, `salt_env`, `salt_file`, `copy_key`",
            "sinks.screen.transforms[0].route: only the pipeline's transforms route and copy; move this step to [[transforms]]",
        ]
    );
    // Once the steps parse, each is compiled: the expression's error says where.
    let text = format!("{GOOD}\n[[transforms]]\nfilter = '''row.id > 1 &&\n  row.status =='''\n");
    assert_eq!(
        errors_of(&text),
        ["transforms[0].filter: line 2, column 16: Script is incomplete"]
    );
    let good = format!("{GOOD}\n[[transforms]]\nroute = [\"screen\"]\n[[sinks.archive.transforms]]\nkeep = [\"id\"]\n");
    let config = parse(&good).unwrap();
    assert_eq!(
        format!("{:?}", config.transforms),
        "Some(Chain { steps: [\"transforms[0] (route)\"] })"
    );
    assert!(config.sinks[0].transforms.is_some());
}

#[test]
fn a_copy_to_an_effectively_once_sink_is_refused() {
    let text = format!(
        "{GOOD}\n[sinks.db]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306\"\neffectively_once = true\nstate_database = \"state\"\n\n[[transforms]]\ncopy = \"db\"\n"
    );
    assert_eq!(
        errors_of(&text),
        ["transforms[0].copy: sink `db` has effectively_once, which would skip a copy as already applied; copy to a sink without it"]
    );
}

#[test]
fn the_admin_api_off_loopback_needs_a_token() {
    let text = format!("{GOOD}\n[admin]\nlisten = \"0.0.0.0:9180\"\n");
    assert_eq!(
        errors_of(&text),
        ["admin.listen: 0.0.0.0:9180 is reachable from other machines: set token_env or token_file, whose bearer token every request but /health must carry"]
    );
    let text = format!(
        "{GOOD}\n[admin]\nlisten = \"localhost\"\ntoken_env = \"ROWBUS_NO_SUCH_VARIABLE\"\n"
    );
    assert_eq!(
        errors_of(&text),
        [
            "admin.listen: `localhost` is not an IP address and port, e.g. \"127.0.0.1:9180\"",
            "admin.token_env: environment variable ROWBUS_NO_SUCH_VARIABLE is not set",
        ]
    );
    let config = parse(&format!("{GOOD}\n[admin]\nlisten = \"127.0.0.1:9181\"\n")).unwrap();
    assert_eq!(config.admin.unwrap().listen.port(), 9181);
    // An empty section: on, on loopback.
    let config = parse(&format!("{GOOD}\n[admin]\n")).unwrap();
    assert_eq!(config.admin.unwrap().listen.to_string(), "127.0.0.1:9180");
    assert!(parse(GOOD).unwrap().admin.is_none());
}

#[test]
fn apply_ddl_is_for_mysql_targets_with_schema_changes_and_unmapped_names() {
    let once = "effectively_once = true\nstate_database = \"rowbus\"";
    let sinks = format!(
        "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://u@h/db\"\nschema_changes = true\napply_ddl = true\n\n\
         [sinks.my]\ntype = \"mysql\"\nurl = \"mysql://root@h\"\napply_ddl = true\n{once}\n\n\
         [sinks.nomarker]\ntype = \"mysql\"\nurl = \"mysql://root@h\"\nschema_changes = true\napply_ddl = true\n\n\
         [sinks.renamed]\ntype = \"mysql\"\nurl = \"mysql://root@h\"\nschema_changes = true\napply_ddl = true\ntable = \"copy_{{table}}\"\n{once}\n\n\
         [sinks.ok]\ntype = \"mysql\"\nurl = \"mysql://root@h\"\nschema_changes = true\napply_ddl = true\n{once}"
    );
    let errors = errors_of(&format!("{GOOD}\n{sinks}"));
    let fields = fields_of(&errors);
    assert_eq!(
        fields,
        [
            "sinks.my.apply_ddl",
            "sinks.nomarker.apply_ddl",
            "sinks.pg.apply_ddl",
            "sinks.renamed.apply_ddl"
        ],
        "{errors:?}"
    );
    assert!(
        errors[0].contains("needs schema_changes = true"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("needs effectively_once = true"),
        "{errors:?}"
    );
    assert!(
        errors[2].contains("only for type = \"mysql\""),
        "{errors:?}"
    );
    assert!(
        errors[3].contains("not with table, rename_columns"),
        "{errors:?}"
    );
}

#[test]
fn a_search_sink_is_read_with_its_defaults_and_credentials() {
    std::env::set_var("ROWBUS_TEST_SEARCH_KEY", "aWQ6a2V5");
    let text = format!(
        "{GOOD}\n[sinks.search]\ntype = \"opensearch\"\nurl = \"https://search.local:9200/\"\nid_columns = {{ \"shop.orders\" = [\"region\", \"id\"] }}\napi_key_env = \"ROWBUS_TEST_SEARCH_KEY\"\n"
    );
    let config = parse(&text).unwrap();
    let sink = config.sinks.iter().find(|s| s.name == "search").unwrap();
    let SinkKind::Search(search) = &sink.kind else {
        panic!("not a search sink: {:?}", sink.kind);
    };
    assert_eq!(search.url, "https://search.local:9200");
    assert_eq!(search.index_of("Shop", "Orders"), "shop.orders");
    assert_eq!(
        search.id_columns_of("shop", "orders"),
        Some(&["region".to_string(), "id".to_string()][..])
    );
    assert_eq!(search.workers, 4);
    assert_eq!(sink.batch_max_events, 5_000);
    let rowbus_sinks::search::config::Auth::ApiKey(key) = &search.auth else {
        panic!("no API key: {:?}", search.auth);
    };
    assert_eq!(key.expose(), "aWQ6a2V5");
}

#[test]
fn search_sink_errors_name_their_fields() {
    let text = format!(
        "{GOOD}\n[sinks.search]\ntype = \"elasticsearch\"\nurl = \"http://elastic:secret@127.0.0.1:9200\"\nwrite = \"merge\"\nschema_changes = true\nuser = \"elastic\"\nworkers = 0\nindex_settings = {{ \"orders\" = \"/nonexistent/orders.json\" }}\n"
    );
    let errors = errors_of(&text);
    let fields = fields_of(&errors);
    assert_eq!(
        fields,
        [
            "sinks.search.url",
            "sinks.search.schema_changes",
            "sinks.search.write",
            "sinks.search.workers",
            "sinks.search.index_settings",
            "sinks.search.index_settings.orders",
            "sinks.search.password_env",
        ],
        "{errors:?}"
    );
    // The URL's password is not echoed.
    assert!(!errors.iter().any(|e| e.contains("secret")), "{errors:?}");
}

#[test]
fn search_sink_nests_are_read_as_lists_of_key_columns() {
    let text = format!(
        "{GOOD}\n[sinks.search]\ntype = \"opensearch\"\nurl = \"http://127.0.0.1:9200\"\nnest = [\n  {{ table = \"shop.items\", into = \"shop.orders\", field = \"items\", parent_key = \"order_id\" }},\n  {{ table = \"shop.notes\", into = \"shop.orders\", field = \"notes\", parent_key = [\"region\", \"order_id\"] }},\n]\n"
    );
    let config = parse(&text).unwrap();
    let sink = config.sinks.iter().find(|s| s.name == "search").unwrap();
    let SinkKind::Search(search) = &sink.kind else {
        panic!("not a search sink: {:?}", sink.kind);
    };
    let keys: Vec<&[String]> = search.nests.iter().map(|n| &n.parent_key[..]).collect();
    assert_eq!(
        keys,
        [
            &["order_id".to_string()][..],
            &["region".to_string(), "order_id".to_string()][..]
        ]
    );
    assert!(search.is_nested("shop", "orders") && search.is_nested("shop", "notes"));
    assert!(!search.is_nested("shop", "users"));
    let fields: Vec<String> = search
        .nest_fields_of("shop.orders")
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(fields, ["items", "notes"]);
}

#[test]
fn search_sink_nest_errors_name_their_fields() {
    let text = format!(
        "{GOOD}\n[sinks.search]\ntype = \"opensearch\"\nurl = \"http://127.0.0.1:9200\"\nnest = [\n  {{ table = \"items\", into = \"shop.orders\", field = \"a.b\", parent_key = [] }},\n  {{ table = \"shop.orders\", into = \"shop.users\", field = \"orders\", parent_key = \"user_id\" }},\n  {{ table = \"shop.x\", into = \"shop.x\", field = \"orders\", parent_key = \"x\" }},\n]\n"
    );
    let errors = errors_of(&text);
    assert_eq!(
        errors,
        [
            "sinks.search.nest[0].table: `items` is not of the form db.table",
            "sinks.search.nest[0].field: must be a top-level field name (no dots, not @rowbus)",
            "sinks.search.nest[0].parent_key: must name the child's column(s) holding the parent's id",
            "sinks.search.nest[1].table: nesting is one level deep: `shop.orders` holds nested rows itself",
            "sinks.search.nest[2].into: a table cannot be nested into itself",
            "sinks.search.nest[2].table: nesting is one level deep: `shop.x` holds nested rows itself",
        ],
        "{errors:?}"
    );
}

#[test]
fn kafka_sink_settings_are_read_with_their_defaults() {
    let text = format!(
        "{GOOD}\n[sinks.events]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\nformat = \"debezium\"\ntombstones = true\nkey_columns = {{ \"shop.orders\" = [\"region\", \"id\"] }}\noptions = {{ \"security.protocol\" = \"plaintext\" }}\n"
    );
    let config = parse(&text).unwrap();
    let sink = config.sinks.iter().find(|s| s.name == "events").unwrap();
    let SinkKind::Kafka(kafka) = &sink.kind else {
        panic!("not a kafka sink: {:?}", sink.kind);
    };
    assert_eq!(kafka.topic_of("shop", "orders"), "shop.orders");
    assert_eq!(kafka.format, rowbus_sinks::format::Format::Debezium);
    assert!(kafka.tombstones && !kafka.create_topics);
    assert_eq!(
        kafka.key_columns_of("shop", "orders"),
        Some(&["region".to_string(), "id".to_string()][..])
    );
    assert_eq!(kafka.linger, std::time::Duration::from_millis(5));
    assert_eq!(sink.batch_max_events, 10_000);
}

#[test]
fn kafka_sink_errors_name_their_fields() {
    let text = format!(
        "{GOOD}\n[sinks.events]\ntype = \"kafka\"\nbrokers = \"localhost\"\nformat = \"avro\"\ncompression = \"brotli\"\nlinger = \"soon\"\npartitions = 0\nmessage_max_bytes = 10\noptions = {{ \"acks\" = \"1\" }}\n"
    );
    let errors = errors_of(&text);
    let fields = fields_of(&errors);
    assert_eq!(
        fields,
        [
            "sinks.events.brokers",
            "sinks.events.format",
            "sinks.events.compression",
            "sinks.events.linger",
            "sinks.events.message_max_bytes",
            "sinks.events.partitions",
            "sinks.events.options.acks",
        ],
        "{errors:?}"
    );
}

#[test]
fn a_kafka_source_is_read_with_its_defaults() {
    let text = "data_dir = \"/tmp/x\"\n[sources.replay]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\ntopics = [\"cdc.shop.orders\"]\nformat = \"debezium\"\ninclude = [\"shop.*\"]\n[sinks.out]\ntype = \"stdout\"\n";
    let config = parse(text).unwrap();
    let SourceConfig::Kafka(kafka) = &config.source else {
        panic!("not a kafka source: {:?}", config.source);
    };
    assert_eq!(config.source.name(), "replay");
    assert_eq!(kafka.group, "rowbus-replay");
    assert_eq!(kafka.format, rowbus_kafka::InFormat::Debezium);
    assert_eq!(kafka.start, rowbus_kafka::Start::Earliest);
    assert!(config.source.tables().matches("shop", "orders"));
    assert!(!config.source.tables().matches("crm", "people"));
    assert!(config.source.mysql().is_none());
}

#[test]
fn kafka_source_errors_name_their_fields() {
    let text = "data_dir = \"/tmp/x\"\n[sources.replay]\ntype = \"kafka\"\nbrokers = \"\"\ntopics = []\nformat = \"canal\"\nstart = \"yesterday\"\noptions = { \"enable.auto.commit\" = \"true\" }\n[sinks.out]\ntype = \"stdout\"\n";
    let errors = errors_of(text);
    let fields = fields_of(&errors);
    assert_eq!(
        fields,
        [
            "sources.replay.brokers",
            "sources.replay.topics",
            "sources.replay.format",
            "sources.replay.start",
            "sources.replay.options.enable.auto.commit",
        ],
        "{errors:?}"
    );
}

#[test]
fn a_database_sink_takes_source_transactions_or_names_the_field() {
    let sink = |value: &str| {
        format!("{GOOD}\n[sinks.copy]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306\"\ntransactions = \"{value}\"\n")
    };
    let config = parse(&sink("source")).unwrap();
    let copy = config.sinks.iter().find(|s| s.name == "copy").unwrap();
    let SinkKind::Sql(sql) = &copy.kind else {
        panic!("not a database sink: {:?}", copy.kind);
    };
    assert!(sql.source_transactions);
    let errors = errors_of(&sink("nested"));
    assert_eq!(
        errors,
        ["sinks.copy.transactions: unknown value `nested`, expected batch or source"]
    );
}
