//! Micro-benchmarks for the statement pre-lexer and classifier (issue 5):
//! the target is under 200 ns to classify a ~100-byte SELECT.
//!
//! Run: `cargo bench --bench classify -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use splitrail::router::lexer::Lexer;
use splitrail::router::{classify, route, Classifier, SessionFlags};

/// (name, statement). The first is the reference case: a ~100-byte
/// point SELECT as sysbench and ORMs send it.
const CASES: &[(&str, &str)] = &[
    (
        "select_100b",
        "SELECT id, k, c, pad FROM sbtest1 WHERE id = 4242 AND k > 17 ORDER BY id LIMIT 10 /* app:orders */",
    ),
    (
        "select_orm_128b",
        "SELECT `users`.`id`, `users`.`email`, `users`.`name`, `users`.`created_at` FROM `users` WHERE `users`.`id` = 4242 LIMIT 1",
    ),
    ("select_sysbench_point", "SELECT c FROM sbtest1 WHERE id=4242"),
    (
        "insert_100b",
        "INSERT INTO sbtest1 (id, k, c, pad) VALUES (0, 5014, '83868641912-28773972837', '67847967377-48000963322')",
    ),
    (
        "comments_strings_140b",
        "/* splitrail:replica */ SELECT name, 'it''s -- not a comment', \"a;b\" FROM t # trailing\n WHERE note <> '/* x */' AND id IN (1, 2, 3)",
    ),
    (
        "update_with_functions",
        "UPDATE sbtest1 SET k=k+1, c=CONCAT(c, 'x'), pad=NOW() WHERE id=4242",
    ),
];

fn lex_all(sql: &[u8]) -> usize {
    let mut lx = Lexer::new(sql);
    let mut n = 0;
    while lx.next_token().is_some() {
        n += 1;
    }
    n
}

fn benches(c: &mut Criterion) {
    for (name, sql) in CASES {
        eprintln!(
            "{name}: {} bytes, {} tokens",
            sql.len(),
            lex_all(sql.as_bytes())
        );
    }

    let mut g = c.benchmark_group("classify");
    for (name, sql) in CASES {
        g.bench_function(*name, |b| b.iter(|| classify(black_box(sql.as_bytes()))));
    }
    g.finish();

    let mut g = c.benchmark_group("lexer");
    for (name, sql) in CASES {
        g.bench_function(*name, |b| b.iter(|| lex_all(black_box(sql.as_bytes()))));
    }
    g.finish();

    // What a session calls per COM_QUERY: the classifier with its parser
    // fallback (not taken for these statements), then routing.
    let classifier = Classifier::new(4096);
    let mut g = c.benchmark_group("classify_and_route");
    for (name, sql) in CASES {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let c = classifier.classify(black_box(sql.as_bytes()));
                route(&c, SessionFlags::default())
            })
        });
    }
    // A shape the pre-lexer gives up on: a cached parser verdict.
    let unsure = b"(WITH a AS (SELECT 1) SELECT * FROM a)";
    classifier.classify(unsure);
    g.bench_function("unsure_cached", |b| {
        b.iter(|| classifier.classify(black_box(unsure)))
    });
    g.finish();
}

criterion_group!(classify_benches, benches);
criterion_main!(classify_benches);
