//! The `crm` binary as a process, on a temporary SQLite file: exit codes, tables, JSON
//! parsed back, charts drawn and rendered, bad input refused with one line and nothing
//! written.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{rows, Shell};

#[test]
fn without_a_database_every_command_says_how_to_make_one_and_creates_nothing() {
    let shell = Shell::new();
    for args in [
        &["customers", "list"][..],
        &["report", "abc"],
        &["outbox", "pending"],
        &["migrate", "--status"],
    ] {
        let err = shell.fails(args);
        assert!(err.contains("no database at"), "{err}");
    }
    assert!(!shell.db().exists());
}

#[test]
fn init_creates_the_schema_and_migrate_lists_every_migration_as_applied() {
    let shell = Shell::new();
    let said = shell.ok(&["init"]);
    assert!(said.starts_with("created "), "{said}");
    let status = shell.ok(&["migrate", "--status"]);
    let lines: Vec<&str> = status.lines().skip(2).collect();
    assert_eq!(lines.len(), 18, "{status}");
    assert!(lines.iter().all(|l| l.ends_with("applied")), "{status}");
    assert!(lines[0].contains("initial"), "{status}");
    // Migrating again changes nothing.
    assert_eq!(shell.ok(&["migrate"]), status);
}

#[test]
fn customers_list_show_search_and_timeline() {
    let shell = Shell::demo();
    let all = shell.json(&["customers", "list", "--limit", "1000", "--format", "json"]);
    assert_eq!(rows(&all).len(), 120);
    let five = shell.json(&["customers", "list", "--limit", "5", "--format", "json"]);
    assert_eq!(rows(&five).len(), 5);
    assert_eq!(
        rows(&five)[..],
        rows(&all)[..5],
        "the first page of the same order"
    );
    let newsletter = shell.json(&[
        "customers",
        "list",
        "--tag",
        "newsletter",
        "--limit",
        "1000",
        "--format",
        "json",
    ]);
    assert!(!rows(&newsletter).is_empty() && rows(&newsletter).len() < 120);
    assert!(rows(&newsletter)
        .iter()
        .all(|c| c["tags"].as_str().unwrap().contains("newsletter")));

    let first = &rows(&all)[0];
    let id = first["id"].as_str().unwrap();
    let name = first["name"].as_str().unwrap();
    let table = shell.ok(&["customers", "show", id]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("name") && l.ends_with(name)),
        "{table}"
    );
    let doc = shell.json(&["customers", "show", id, "--format", "json"]);
    assert_eq!(doc["customer"]["id"], id);
    let purchases = doc["profile"]["purchase_count"].as_u64().unwrap();

    let prefix = &name[..3];
    let found = shell.json(&[
        "customers",
        "search",
        prefix,
        "--limit",
        "1000",
        "--format",
        "json",
    ]);
    assert!(rows(&found).iter().any(|c| c["id"] == id));
    assert!(rows(&found)
        .iter()
        .all(|c| c["name"].as_str().unwrap().starts_with(prefix)));
    let email = first["email"].as_str().unwrap();
    let by_email = shell.json(&["customers", "search", email, "--format", "json"]);
    assert_eq!(rows(&by_email).len(), 1);
    assert_eq!(rows(&by_email)[0]["id"], id);

    let timeline = shell.ok(&["timeline", id, "--limit", "1000", "--format", "csv"]);
    let mut lines = timeline.lines();
    assert_eq!(
        lines.next(),
        Some("when,channel,direction,kind,by,amount,subject")
    );
    let bought = lines.filter(|l| l.contains(",purchase,")).count();
    assert_eq!(bought as u64, purchases, "{timeline}");
}

#[test]
fn reports_as_tables_csv_and_json_agree() {
    let shell = Shell::demo();
    let rfm = shell.ok(&["report", "rfm", "--format", "csv"]);
    let mut lines = rfm.lines();
    assert_eq!(
        lines.next(),
        Some("customer,name,recency_days,frequency,monetary,r,f,m,segment,abc")
    );
    let buyers = lines.count();
    assert!(buyers > 50 && buyers <= 120, "{buyers} buyers");

    let abc = shell.json(&["report", "abc", "--format", "json"]);
    let classes: Vec<&str> = rows(&abc)
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["A", "B", "C"]);
    let counted: u64 = rows(&abc)
        .iter()
        .map(|c| c["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, buyers);
    let share: f64 = rows(&abc)
        .iter()
        .map(|c| c["revenue_share"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((share - 100.0).abs() < 0.2, "{share}");
    let table = shell.ok(&["report", "abc"]);
    assert!(table.starts_with("class  customers"), "{table}");

    let clv = shell.json(&["report", "clv", "--format", "json"]);
    for key in ["r", "alpha", "a", "b", "p", "q", "gamma", "log_likelihood"] {
        assert!(
            clv[key].as_f64().is_some_and(f64::is_finite),
            "{key}: {clv}"
        );
    }
    let holdout = clv["holdout"].as_array().unwrap();
    assert!(!holdout.is_empty());
    let customers: u64 = holdout
        .iter()
        .map(|h| h["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(customers, clv["customers"].as_u64().unwrap());

    let alive = shell.json(&["report", "alive", "--format", "json"]);
    assert_eq!(rows(&alive).len(), buyers);
    let chances: Vec<f64> = rows(&alive)
        .iter()
        .map(|r| r["p_alive"].as_f64().unwrap())
        .collect();
    assert!(chances.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(
        chances.windows(2).all(|w| w[0] <= w[1]),
        "least likely first"
    );

    let pool = shell.json(&["report", "pool", "--format", "json"]);
    let held: u64 = rows(&pool)
        .iter()
        .map(|r| r["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(held, 120);
    for r in rows(&pool) {
        assert!(r["quiet_90_days"].as_u64() <= r["quiet_30_days"].as_u64());
    }

    let pipeline = shell.json(&["report", "pipeline", "--format", "json"]);
    assert!(!rows(&pipeline).is_empty());
    for r in rows(&pipeline) {
        let amount: f64 = r["amount"].as_str().unwrap().parse().unwrap();
        let weighted: f64 = r["weighted"].as_str().unwrap().parse().unwrap();
        assert!(weighted > 0.0 && weighted < amount, "{r}");
    }
    let funnel = shell.json(&["report", "funnel", "--format", "json"]);
    let deals = funnel["deals"].as_u64().unwrap();
    assert!(deals > 0);
    assert_eq!(funnel["steps"][0]["reached"].as_u64(), Some(deals));
    assert!(funnel["won"].as_u64().unwrap() + funnel["lost"].as_u64().unwrap() <= deals);
    let table = shell.ok(&["report", "funnel"]);
    assert!(
        table.starts_with("stage") && table.contains("\nqualify "),
        "{table}"
    );

    let card = shell.json(&["report", "scorecard", "--format", "json"]);
    assert_eq!(rows(&card).len(), 8, "2 rules by 4 people: {card}");
    for line in rows(&card) {
        let (measured, met, breached) = (
            line["measured"].as_u64().unwrap(),
            line["met"].as_u64().unwrap(),
            line["breached"].as_u64().unwrap(),
        );
        assert_eq!(measured, met + breached);
    }
}

#[test]
fn transfer_moves_one_persons_customers() {
    let shell = Shell::demo();
    let owned = |who: &str| {
        rows(&shell.json(&[
            "customers",
            "list",
            "--owner",
            who,
            "--limit",
            "1000",
            "--format",
            "json",
        ]))
        .len()
    };
    let (sam, maria) = (owned("Sam Okafor"), owned("Maria Lopez"));
    assert_eq!(sam, 30);
    let said = shell.ok(&["transfer", "--from", "Sam Okafor", "--to", "Maria Lopez"]);
    assert_eq!(
        said.trim(),
        "moved 30 customer(s) from Sam Okafor to Maria Lopez"
    );
    assert_eq!(owned("Sam Okafor"), 0);
    assert_eq!(owned("Maria Lopez"), maria + sam);
}

#[test]
fn the_outbox_and_personal_data() {
    let shell = Shell::demo();
    assert_eq!(
        shell.ok(&["outbox", "pending"]).trim(),
        "0 message(s) waiting to be sent"
    );
    assert_eq!(
        shell.json(&["outbox", "dead", "--format", "json"]),
        Value::Array(vec![])
    );
    let err = shell.fails(&["outbox", "requeue", "0190a000-0000-7000-8000-000000000001"]);
    assert!(err.contains("not found"), "{err}");

    let all = shell.json(&["customers", "list", "--limit", "1", "--format", "json"]);
    let id = rows(&all)[0]["id"].as_str().unwrap().to_string();
    let name = rows(&all)[0]["name"].as_str().unwrap().to_string();
    let export = shell.json(&["privacy", "export", &id]);
    assert_eq!(export["customer"]["id"], id.as_str());
    assert!(export["interactions"].is_array());

    // Without a terminal, erasure needs --yes; nothing is erased before it.
    let err = shell.fails(&["privacy", "erase", &id]);
    assert!(err.contains("--yes"), "{err}");
    let still = shell.json(&["customers", "show", &id, "--format", "json"]);
    assert_eq!(still["customer"]["name"], name.as_str());
    let said = shell.ok(&["privacy", "erase", &id, "--yes"]);
    assert!(said.starts_with(&format!("erased {id}")), "{said}");
    let gone = shell.json(&["customers", "show", &id, "--format", "json"]);
    assert_ne!(gone["customer"]["name"], name.as_str());
    assert!(gone["customer"]["emails"].as_array().unwrap().is_empty());
}

#[test]
fn bad_input_is_one_line_naming_it_and_changes_nothing() {
    let shell = Shell::demo();
    let before = std::fs::read(shell.db()).unwrap();
    let cases: [(&[&str], &str); 8] = [
        (&["report", "rfm", "--as-of", "2025-13-01"], "--as-of"),
        (&["report", "abc", "--currency", "EURO"], "--currency"),
        (&["report", "clv", "--as-of", "2999-01-01"], "--as-of"),
        (&["customers", "show", "not-an-id"], "id"),
        (
            &["customers", "list", "--lifecycle", "happy"],
            "--lifecycle",
        ),
        (&["customers", "search", "ann@"], "email"),
        (
            &["transfer", "--from", "nobody", "--to", "Maria Lopez"],
            "from",
        ),
        (&["demo"], "already has customers"),
    ];
    for (args, names) in cases {
        let err = shell.fails(args);
        assert!(
            err.starts_with("crm: ") && err.contains(names),
            "{args:?}: {err}"
        );
    }
    let chart = shell.path("nowhere/chart.svg");
    let err = shell.fails(&["report", "abc", "--chart", chart.to_str().unwrap()]);
    assert!(err.contains("--chart"), "{err}");
    assert_eq!(
        std::fs::read(shell.db()).unwrap(),
        before,
        "the database is unchanged"
    );
    // clap's own usage errors exit with 2.
    assert_eq!(shell.run(&["report", "nonsense"]).status.code(), Some(2));
}

#[test]
fn help_and_completions() {
    let shell = Shell::new();
    let help = shell.ok(&["--help"]);
    for command in [
        "init",
        "demo",
        "customers",
        "report",
        "outbox",
        "privacy",
        "completions",
    ] {
        assert!(help.contains(command), "{help}");
    }
    let report = shell.ok(&["report", "--help"]);
    assert!(report.contains("--chart <FILE.svg>"), "{report}");
    let bash = shell.ok(&["completions", "bash"]);
    assert!(bash.contains("_crm()"), "{bash}");
}

/// Counts the occurrences of `needle` in `text`.
fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Renders an SVG to pixels with the system's fonts; returns how many pixels are not white
/// and how many of those are in the chart's colours rather than grey.
fn render(svg: &str, png: Option<&Path>) -> (usize, usize) {
    let mut options = resvg::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // The charts ask for `sans-serif`; DejaVu is Debian's (fonts-dejavu-core, which
    // `.ci/run` installs).
    fonts.set_sans_serif_family("DejaVu Sans");
    let tree = resvg::usvg::Tree::from_str(svg, &options).expect("a valid SVG");
    let size = tree.size().to_int_size();
    assert_eq!((size.width(), size.height()), (900, 600));
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(&tree, Default::default(), &mut pixmap.as_mut());
    if let Some(path) = png {
        pixmap.save_png(path).expect("PNG written");
    }
    let mut ink = 0;
    let mut colour = 0;
    for p in pixmap.pixels() {
        let (r, g, b) = (p.red(), p.green(), p.blue());
        if (r, g, b) != (255, 255, 255) && p.alpha() > 0 {
            ink += 1;
            if r.abs_diff(g) > 40 || g.abs_diff(b) > 40 || r.abs_diff(b) > 40 {
                colour += 1;
            }
        }
    }
    (ink, colour)
}

/// The SVG without its `<text>` elements.
fn without_text(svg: &str) -> String {
    let mut out = String::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("</text>").expect("closed") + start + "</text>".len();
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Each report's chart: what it must show in its SVG text, and drawn pixels when rendered.
/// `CRM_WRITE_CHARTS=1` also writes each PNG under `docs/` (the README shows them).
#[test]
fn every_chart_shows_what_it_must() {
    let shell = Shell::new();
    shell.ok(&["demo", "--customers", "300"]);
    let write = std::env::var_os("CRM_WRITE_CHARTS").is_some();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let draw = |report: &str| -> String {
        let svg_path = shell.path(&format!("{report}.svg"));
        let out = shell.run(&["report", report, "--chart", svg_path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let svg = std::fs::read_to_string(&svg_path).expect("the chart was written");
        let png = write.then(|| docs.join(format!("chart-{report}.png")));
        let (ink, colour) = render(&svg, png.as_deref());
        assert!(
            ink > 10_000 && colour > 1_000,
            "{report}: {ink} drawn, {colour} in colour"
        );
        // The labels are drawn too: without them, fewer pixels are.
        let (bare, _) = render(&without_text(&svg), None);
        assert!(
            ink > bare + 2_000,
            "{report}: the labels draw {} pixels (is DejaVu Sans installed?)",
            ink.saturating_sub(bare)
        );
        svg
    };

    let abc = draw("abc");
    assert!(abc.contains("ABC analysis: revenue (EUR) by customer"));
    assert!(abc.contains("cumulative revenue (% of total)"));
    assert!(abc.contains("A | B cut at") && abc.contains("B | C cut at"));
    assert!(abc.contains("cumulative revenue of "));

    let rfm = draw("rfm");
    let cells = rfm
        .lines()
        .filter(|l| {
            l.strip_suffix(" customers")
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .count();
    assert_eq!(cells, 25, "a 5 by 5 grid, each cell with its count");
    assert_eq!(count(&rfm, " EUR\n"), 25, "and its revenue");
    assert!(rfm.contains("recency score") && rfm.contains("frequency score"));

    let clv = draw("clv");
    assert!(clv.contains("expected by the model") && clv.contains(">\nactual\n<"));
    // A point per frequency 0 to 7+, in each of the two series (and one in each legend).
    let points = count(&clv, "<circle");
    assert_eq!(points, 16, "8 frequencies, actual and expected");
    assert!(clv.contains("repeat purchases in the calibration period"));

    let alive = draw("alive");
    assert!(alive.contains("P(alive) by weeks since the last purchase"));
    assert!(alive.contains("probability the customer is still active"));
    let buyers = shell
        .ok(&["report", "alive", "--format", "csv"])
        .lines()
        .count()
        - 1;
    assert_eq!(
        count(&alive, "<circle"),
        buyers + 4,
        "a point per customer, 4 in the legend"
    );

    let card = draw("scorecard");
    for person in ["Maria Lopez", "Jonas Berg", "Aiko Tanaka", "Sam Okafor"] {
        assert_eq!(
            count(&card, &format!("\n{person}\n")),
            2,
            "{person}: a bar per rule"
        );
    }
    assert!(card.contains("first-reply-4h (dashed: its goal)"));
    // 8 bars and 2 legend swatches in the rules' colours.
    assert_eq!(
        count(&card, "fill=\"#3C64B4\"") + count(&card, "fill=\"#EB8C28\""),
        10
    );
}

/// The same commands on PostgreSQL (a throwaway cluster), named by a `postgres://` URL.
#[test]
fn postgres_through_a_url() {
    use crm_testkit::postgres::{postgres_for_tests, PostgresTarget};
    let Some(PostgresTarget::Throwaway(server)) = postgres_for_tests() else {
        eprintln!("needs a throwaway cluster");
        return;
    };
    let socket: String = server
        .socket_dir()
        .display()
        .to_string()
        .bytes()
        .map(|b| match b {
            b'/' => "%2F".to_string(),
            _ => (b as char).to_string(),
        })
        .collect();
    let url = format!("postgres://postgres@{socket}:{}/postgres", server.port());
    let shell = Shell::new();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_crm"))
            .args(["--database", &url])
            .args(args)
            .current_dir(shell.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("crm runs");
        assert!(
            out.status.success(),
            "crm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let pending = run(&["migrate", "--status"]);
    assert!(
        pending.lines().skip(2).all(|l| l.ends_with("pending")),
        "{pending}"
    );
    run(&["init"]);
    let applied = run(&["migrate", "--status"]);
    assert!(
        applied.lines().skip(2).all(|l| l.ends_with("applied")),
        "{applied}"
    );
    run(&["demo", "--customers", "40"]);
    let list: Value =
        serde_json::from_str(&run(&["customers", "list", "--format", "json"])).unwrap();
    assert_eq!(rows(&list).len(), 40);
    let abc: Value = serde_json::from_str(&run(&["report", "abc", "--format", "json"])).unwrap();
    assert_eq!(rows(&abc).len(), 3);
    let made = std::fs::read_dir(shell.dir.path()).unwrap().count();
    assert_eq!(made, 0, "no SQLite file was made");
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), erasure asks, and only
/// "yes" erases.
#[test]
fn erase_asks_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) to make a terminal");
        return;
    }
    let shell = Shell::demo();
    let all = shell.json(&["customers", "list", "--limit", "1", "--format", "json"]);
    let id = rows(&all)[0]["id"].as_str().unwrap().to_string();
    let name = rows(&all)[0]["name"].as_str().unwrap().to_string();
    let on_terminal = |answer: &str| {
        let command = format!(
            "{} --database {} privacy erase {id}",
            env!("CARGO_BIN_EXE_crm"),
            shell.db().display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (erased, said) = on_terminal("no");
    assert!(!erased, "{said}");
    assert!(
        said.contains(&format!("Erase the personal data of {name}")),
        "{said}"
    );
    assert!(said.contains("not erased"), "{said}");
    let kept = shell.json(&["customers", "show", &id, "--format", "json"]);
    assert_eq!(kept["customer"]["name"], name.as_str());
    let (erased, said) = on_terminal("yes");
    assert!(erased, "{said}");
    let gone = shell.json(&["customers", "show", &id, "--format", "json"]);
    assert_ne!(gone["customer"]["name"], name.as_str());
}
