//! `crm import` and `crm segment` as processes: mapping files, rejected rows, dry runs,
//! re-runs, rules.

mod support;

use serde_json::Value;
use support::{rows, Shell};

const CUSTOMERS: &str = "\
customer_no,name,email,status,tags,birthday
K1,Ann Lee,ann@example.com,active,vip;newsletter,1980-02-03
K2,Bob Stone,bob@example,active,,
K3,Chloe Park,chloe@example.com,lead,,1990-13-01
K4,Dan Wu,dan@example.com,active,,
";

const ORDERS: &str = "\
order_no,customer_no,channel,kind,date,total,currency
O1,K1,web,purchase,2026-01-05,19.90,EUR
O2,K1,web,purchase,2026-03-05,45.00,EUR
O3,K4,store,purchase,2026-02-01,12.50,EUR
O4,K9,web,purchase,2026-02-01,12.50,EUR
";

const MAPPING: &str = r#"
[customers]
source = "shop"
external_id = "customer_no"
name = "name"
emails = ["email"]
lifecycle = "status"
tags = "tags"
attributes = [{ column = "birthday", key = "birthday", type = "date" }]

[interactions]
source = "shop"
external_id = "order_no"
customer = "customer_no"
channel = "channel"
kind = "kind"
occurred_at = "date"
amount = "total"
currency = "currency"
"#;

/// A database and the three files.
fn shell() -> Shell {
    let shell = Shell::new();
    shell.ok(&["init"]);
    for (name, text) in [
        ("customers.csv", CUSTOMERS),
        ("orders.csv", ORDERS),
        ("mapping.toml", MAPPING),
    ] {
        std::fs::write(shell.path(name), text).unwrap();
    }
    shell
}

fn customers(shell: &Shell) -> Vec<Value> {
    rows(&shell.json(&["customers", "list", "--format", "json"])).clone()
}

#[test]
fn customers_then_interactions_with_rejected_rows_in_a_file() {
    let shell = shell();
    let import = [
        "import",
        "customers",
        "customers.csv",
        "--mapping",
        "mapping.toml",
    ];
    let summary = shell.json(&[&import[..], &["--format", "json"]].concat());
    assert_eq!(
        summary,
        serde_json::json!([{"rows": 4, "created": 2, "updated": 0, "unchanged": 0, "rejected": 2, "accounts": 0}])
    );
    let rejected = std::fs::read_to_string(shell.path("customers.rejected.csv")).unwrap();
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines[0], "line,column,reason");
    assert!(lines[1].starts_with("3,email,"), "{rejected}");
    assert!(lines[2].starts_with("4,birthday,"), "{rejected}");
    assert_eq!(lines.len(), 3);
    let names: Vec<&str> = customers(&shell)
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .iter()
        .map(|s| match s.as_str() {
            "Ann Lee" => "Ann Lee",
            "Dan Wu" => "Dan Wu",
            _ => "other",
        })
        .collect();
    assert_eq!(names, ["Ann Lee", "Dan Wu"]);

    // Again: nothing new.
    let again = shell.json(&[&import[..], &["--format", "json"]].concat());
    assert_eq!(again[0]["unchanged"], 2);
    assert_eq!(again[0]["created"], 0);

    let orders = shell.json(&[
        "import",
        "interactions",
        "orders.csv",
        "--mapping",
        "mapping.toml",
        "--rejected",
        "bad-orders.csv",
        "--format",
        "json",
    ]);
    assert_eq!(
        orders,
        serde_json::json!([{"rows": 4, "stored": 3, "already_there": 0, "rejected": 1}])
    );
    let bad = std::fs::read_to_string(shell.path("bad-orders.csv")).unwrap();
    assert!(bad.lines().nth(1).unwrap().starts_with("5,"), "{bad}");
    let rfm = shell.json(&["report", "rfm", "--as-of", "2026-06-01", "--format", "json"]);
    let ann = rows(&rfm).iter().find(|r| r["name"] == "Ann Lee").unwrap();
    assert_eq!(ann["frequency"], 2);
    assert_eq!(ann["monetary"], "64.90");
}

#[test]
fn a_dry_run_reports_and_writes_nothing() {
    let shell = shell();
    let summary = shell.json(&[
        "import",
        "customers",
        "customers.csv",
        "--mapping",
        "mapping.toml",
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(summary[0]["created"], 2);
    assert!(customers(&shell).is_empty());
    let out = shell.run(&[
        "import",
        "customers",
        "customers.csv",
        "--mapping",
        "mapping.toml",
        "--dry-run",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("dry run: nothing was written"));
    assert!(customers(&shell).is_empty());
}

#[test]
fn progress_goes_to_stderr_as_plain_lines_when_it_is_not_a_terminal() {
    let shell = shell();
    let out = shell.run(&[
        "import",
        "customers",
        "customers.csv",
        "--mapping",
        "mapping.toml",
    ]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains('\r'), "{err:?}");
    assert_eq!(err.matches("done: 4 rows, 2 rejected").count(), 1, "{err}");
}

#[test]
fn bad_files_and_mappings_are_one_line_and_write_nothing() {
    let shell = shell();
    std::fs::write(
        shell.path("typo.toml"),
        "[customers]\nsource = \"shop\"\nexternal_id = \"customer_no\"\nnmae = \"name\"\n",
    )
    .unwrap();
    std::fs::write(
        shell.path("column.toml"),
        MAPPING.replace("external_id = \"customer_no\"", "external_id = \"cust\""),
    )
    .unwrap();
    let only = &MAPPING[..MAPPING.find("[interactions]").unwrap()];
    std::fs::write(shell.path("only.toml"), only).unwrap();
    std::fs::write(
        shell.path("half.toml"),
        MAPPING.replace("currency = \"currency\"\n", ""),
    )
    .unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "import",
                "customers",
                "missing.csv",
                "--mapping",
                "mapping.toml",
            ],
            "missing.csv",
        ),
        (
            &[
                "import",
                "customers",
                "customers.csv",
                "--mapping",
                "missing.toml",
            ],
            "--mapping",
        ),
        (
            &[
                "import",
                "customers",
                "customers.csv",
                "--mapping",
                "typo.toml",
            ],
            "unknown field `nmae`, expected one of `source`",
        ),
        (
            &[
                "import",
                "customers",
                "customers.csv",
                "--mapping",
                "column.toml",
            ],
            "no column \"cust\"",
        ),
        (
            &[
                "import",
                "interactions",
                "orders.csv",
                "--mapping",
                "only.toml",
            ],
            "no [interactions] table",
        ),
        (
            &[
                "import",
                "interactions",
                "orders.csv",
                "--mapping",
                "half.toml",
            ],
            "both amount and currency",
        ),
    ];
    for (args, says) in cases {
        let err = shell.fails(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let typo = shell.fails(&[
        "import",
        "customers",
        "customers.csv",
        "--mapping",
        "typo.toml",
    ]);
    assert!(typo.trim_end().ends_with("(line 4)"), "{typo}");
    assert!(customers(&shell).is_empty());
    assert!(!shell.path("customers.rejected.csv").exists());
}

#[test]
fn segments_by_rule_text() {
    let shell = Shell::demo();
    let rule = "lifecycle = \"active\" and revenue >= 300";
    let preview = shell.ok(&["segment", "preview", rule, "--limit", "3"]);
    let count: u64 = preview.split_whitespace().next().unwrap().parse().unwrap();
    assert!(count > 0, "{preview}");
    assert_eq!(
        preview.lines().count(),
        1 + 2 + 3.min(count as usize),
        "{preview}"
    );

    let said = shell.ok(&["segment", "create", "Good customers", rule]);
    assert!(
        said.ends_with(&format!("with {count} member(s)\n")),
        "{said}"
    );
    let members = shell.json(&[
        "segment",
        "members",
        "Good customers",
        "--limit",
        "1000",
        "--format",
        "json",
    ]);
    assert_eq!(rows(&members).len() as u64, count);
    // Every member's revenue is what the rule says.
    let first = rows(&members)[0]["id"].as_str().unwrap();
    let shown = shell.json(&["customers", "show", first, "--format", "json"]);
    let revenue: f64 = shown["profile"]["revenue"]["EUR"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(revenue >= 300.0, "{revenue}");

    let list = shell.json(&["segment", "list", "--format", "json"]);
    assert_eq!(rows(&list)[0]["rule"], rule);
    let refreshed = shell.ok(&["segment", "refresh", "Good customers"]);
    assert_eq!(
        refreshed,
        format!("Good customers: 0 entered, 0 left, {count} member(s)\n")
    );

    for (args, says) in [
        (
            &["segment", "preview", "revenue >="][..],
            "line 1, column 11",
        ),
        (
            &["segment", "preview", "shoe_size > 40"],
            "unknown field `shoe_size`",
        ),
        (&["segment", "create", "Dup", "revenue >"], "rule: "),
        (&["segment", "members", "nope"], "no segment named \"nope\""),
        (
            &["segment", "preview", "x = 1", "--attribute", "x=colour"],
            "--attribute",
        ),
    ] {
        let err = shell.fails(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(
        rows(&shell.json(&["segment", "list", "--format", "json"])).len(),
        1
    );
    let typed = shell.ok(&[
        "segment",
        "preview",
        "attr.vat_id = \"x\"",
        "--attribute",
        "vat_id=text",
    ]);
    assert_eq!(typed, "no customer matches\n");
}
