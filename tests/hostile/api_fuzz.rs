//! The HTTP API under property-based fuzzing, schema-driven: the operations come from the
//! served `/api/v1/openapi.json`; bodies are valid requests with fields mutated, removed,
//! added or replaced by arbitrary JSON, or arbitrary bytes; tokens are valid, missing,
//! malformed or revoked; paths name a real payment, a made-up one or junk.
//!
//! For every request: no 5xx and an answer at all (no panic, no dropped connection); every
//! 4xx is an `ErrorBody` with a stable code; a rejected request changes nothing (payments,
//! refunds and WeChat calls are counted before and after). An accepted request is let settle
//! before the next case so that WeChat's call count is stable again.

use std::collections::BTreeMap;
use std::time::Duration;

use paycode_tests::World;
use paycode_tests::cashier::new_attempt_id;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use wxpay::sim::Behaviour;

use crate::{error_body_problem, footprint};

/// One generated request, before the world fills in real ids and codes.
#[derive(Clone, Debug)]
struct Case {
    operation: usize,
    method_override: Option<&'static str>,
    target: Target,
    token: Token,
    body: BodyShape,
    content_type: Option<&'static str>,
    query: Option<String>,
}

#[derive(Clone, Debug)]
enum Target {
    PaidPayment,
    UnknownId,
    Junk(String),
}

#[derive(Clone, Debug)]
enum Token {
    Valid,
    Missing,
    Garbage(String),
    Revoked,
    WrongScheme,
}

#[derive(Clone, Debug)]
enum BodyShape {
    /// No body.
    Empty,
    /// The operation's valid body, with one field replaced by `value` (`None`: removed).
    Mutated { field: usize, value: Option<Value> },
    /// A valid body plus an unknown field.
    Extra(String, Value),
    /// Any JSON value.
    Json(Value),
    /// Any bytes.
    Bytes(Vec<u8>),
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::String),
        "[0-9]{0,24}".prop_map(Value::String),
        "1[0-5][0-9]{16}".prop_map(Value::String),
        Just(json!("¥12.30")),
        Just(json!("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn case(operations: usize) -> impl Strategy<Value = Case> {
    let target = prop_oneof![
        4 => Just(Target::PaidPayment),
        2 => Just(Target::UnknownId),
        1 => "[\\PC]{0,40}".prop_map(Target::Junk),
        1 => prop_oneof![
            Just("..%2F..%2Fetc%2Fpasswd".to_owned()),
            Just("%00".to_owned()),
            Just("a".repeat(3000)),
            Just("1;DROP TABLE payments".to_owned()),
        ]
        .prop_map(Target::Junk),
    ];
    let token = prop_oneof![
        6 => Just(Token::Valid),
        1 => Just(Token::Missing),
        1 => "[ -~]{0,80}".prop_map(Token::Garbage),
        1 => Just(Token::Revoked),
        1 => Just(Token::WrongScheme),
    ];
    let body = prop_oneof![
        1 => Just(BodyShape::Empty),
        6 => (0usize..4, prop::option::weighted(0.8, json_value()))
            .prop_map(|(field, value)| BodyShape::Mutated { field, value }),
        1 => ("[a-z_]{1,10}", json_value()).prop_map(|(name, value)| BodyShape::Extra(name, value)),
        1 => json_value().prop_map(BodyShape::Json),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(BodyShape::Bytes),
    ];
    let content_type = prop_oneof![
        8 => Just(Some("application/json")),
        1 => Just(None),
        1 => prop_oneof![
            Just(Some("text/plain")),
            Just(Some("application/json; charset=latin1")),
            Just(Some("application/x-www-form-urlencoded")),
            Just(Some("application/xml")),
        ],
    ];
    let query = prop::option::weighted(
        0.3,
        prop_oneof![
            "wait=[0-2]&after_version=[0-9]{1,20}",
            "wait=-1",
            "wait=99999999999999999999",
            "after_version=99999999999999999999999",
            "date=[0-9-]{0,12}&terminal=[\\PC]{0,10}",
            "[\\PC]{0,30}",
        ],
    );
    let method_override = prop::option::weighted(
        0.1,
        prop_oneof![Just("PUT"), Just("DELETE"), Just("PATCH"), Just("HEAD")],
    );
    (
        0..operations,
        method_override,
        target,
        token,
        body,
        content_type,
        query,
    )
        .prop_map(
            |(operation, method_override, target, token, body, content_type, query)| Case {
                operation,
                method_override,
                target,
                token,
                body,
                content_type,
                query,
            },
        )
}

/// The operations of the served OpenAPI document: (method, path template).
async fn operations(world: &World) -> Vec<(String, String)> {
    let document: Value = reqwest::get(format!("{}/api/v1/openapi.json", world.address()))
        .await
        .expect("the proxy answers")
        .json()
        .await
        .expect("the OpenAPI document is JSON");
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            operations.push((method.to_uppercase(), path.clone()));
        }
    }
    // And some that do not exist.
    operations.push(("GET".to_owned(), "/api/v1/nothing".to_owned()));
    operations.push((
        "POST".to_owned(),
        "/api/v1/payments/{id}/refunds/x".to_owned(),
    ));
    operations.sort();
    operations
}

/// The valid body of an operation, as a list of fields.
fn valid_fields(path: &str, auth_code: &str) -> Vec<(&'static str, Value)> {
    if path.ends_with("/refunds") {
        vec![
            ("refund_attempt_id", json!(new_attempt_id())),
            ("amount_fen", json!(1)),
            ("reason", json!("退货")),
        ]
    } else if path.ends_with("/payments") {
        vec![
            ("attempt_id", json!(new_attempt_id())),
            ("amount_fen", json!(1230)),
            ("auth_code", json!(auth_code)),
            ("description", json!("商品")),
        ]
    } else {
        Vec::new()
    }
}

struct Context {
    world: World,
    operations: Vec<(String, String)>,
    paid_id: String,
    revoked_token: String,
    http: reqwest::Client,
    outcomes: std::sync::Mutex<BTreeMap<String, usize>>,
}

async fn run_case(context: &Context, case: &Case) -> Result<(), TestCaseError> {
    let world = &context.world;
    let (method, template) = &context.operations[case.operation];
    let method = case.method_override.unwrap_or(method);
    let id = match &case.target {
        Target::PaidPayment => context.paid_id.clone(),
        Target::UnknownId => uuid::Uuid::new_v4().to_string(),
        Target::Junk(junk) => junk.clone(),
    };
    let mut path = template.replace("{id}", &id);
    if let Some(query) = &case.query {
        path = format!("{path}?{query}");
    }
    let url = format!("{}{path}", world.address());
    let Ok(url) = reqwest::Url::parse(&url) else {
        return Ok(()); // Not a request a client could send.
    };
    let code = world.sim.auth_code(Behaviour::PasswordFree);
    let mut fields = valid_fields(template, &code);
    let body: Option<Vec<u8>> = match &case.body {
        BodyShape::Empty => None,
        BodyShape::Mutated { field, value } => {
            if !fields.is_empty() {
                let index = field % fields.len();
                match value {
                    Some(value) => fields[index].1 = value.clone(),
                    None => {
                        fields.remove(index);
                    }
                }
            }
            let object: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect();
            Some(Value::Object(object).to_string().into_bytes())
        }
        BodyShape::Extra(name, value) => {
            let mut object: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect();
            object.insert(name.clone(), value.clone());
            Some(Value::Object(object).to_string().into_bytes())
        }
        BodyShape::Json(value) => Some(value.to_string().into_bytes()),
        BodyShape::Bytes(bytes) => Some(bytes.clone()),
    };
    let method = Method::from_bytes(method.as_bytes()).expect("a method");
    let mut request = context
        .http
        .request(method.clone(), url)
        .timeout(Duration::from_secs(10));
    let valid = world_token(world);
    request = match &case.token {
        Token::Valid => request.bearer_auth(&valid),
        Token::Missing => request,
        Token::Garbage(token) => match reqwest::header::HeaderValue::from_str(token) {
            Ok(value) => request.header(reqwest::header::AUTHORIZATION, value),
            Err(_) => request,
        },
        Token::Revoked => request.bearer_auth(&context.revoked_token),
        Token::WrongScheme => {
            request.header(reqwest::header::AUTHORIZATION, format!("Basic {valid}"))
        }
    };
    if let Some(content_type) = case.content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    if let Some(body) = body {
        request = request.body(body);
    }

    let before = footprint(world).await;
    let response = request.send().await;
    let response = response.map_err(|error| {
        TestCaseError::fail(format!("no answer (dropped or panicked?): {error}"))
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    *context
        .outcomes
        .lock()
        .unwrap()
        .entry(format!("{} {}", status.as_u16(), error_code(&text)))
        .or_insert(0) += 1;
    prop_assert!(
        !status.is_server_error(),
        "{method} {path}: {status}: {text:.300}"
    );
    if status.is_client_error() {
        // HEAD answers carry no body by definition.
        if method != Method::HEAD {
            if let Some(problem) = error_body_problem(status, &text) {
                return Err(TestCaseError::fail(format!("{method} {path}: {problem}")));
            }
        }
        let after = footprint(world).await;
        prop_assert_eq!(
            before,
            after,
            "{} {}: a rejected request changed state ({}: {:.300})",
            method,
            path,
            status,
            text
        );
    } else if method == Method::POST {
        // Accepted: let it settle so the next case starts from a stable state.
        settle(world).await;
    }
    Ok(())
}

fn error_code(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|body| body["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn world_token(world: &World) -> String {
    world.cashier.token().expect("a token").to_owned()
}

/// Waits until every payment is settled and every refund final.
async fn settle(world: &World) {
    for _ in 0..500 {
        let list = world.cashier.today().await;
        let open = list.payments.iter().any(|payment| {
            !payment.state.is_settled()
                || payment.refunds.iter().any(|refund| {
                    !matches!(
                        refund.state,
                        paycode_api::RefundState::Succeeded | paycode_api::RefundState::Failed
                    )
                })
        });
        if !open {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "payments did not settle: {:#?}",
        world.cashier.today().await
    );
}

#[test]
fn the_api_survives_schema_driven_property_fuzzing() {
    let cases: u32 = std::env::var("PAYCODE_HOSTILE_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(400);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let context = runtime.block_on(async {
        let world = World::start_with(100.0, |config| {
            // Refunds complete quickly so that accepted refunds settle between cases.
            config.payments.query_interval = Duration::from_millis(5);
        })
        .await;
        world.sim.set_refund_delay(Duration::from_secs(1));
        let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
        let revoked = world.new_cashier("revoked").await;
        world.terminals.revoke("revoked").await.expect("revoked");
        let operations = operations(&world).await;
        Context {
            paid_id: paid.id,
            revoked_token: revoked.token().expect("a token").to_owned(),
            operations,
            world,
            http: reqwest::Client::new(),
            outcomes: Default::default(),
        }
    });
    let operation_count = context.operations.len();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(operation_count), |case| {
        runtime.block_on(run_case(&context, &case))
    });
    let outcomes = context.outcomes.lock().unwrap().clone();
    println!(
        "api_fuzz: {cases} cases over {operation_count} operations of /api/v1/openapi.json; answers:"
    );
    for (outcome, count) in &outcomes {
        println!("  {outcome:<40} {count:>6}");
    }
    if let Err(error) = result {
        panic!("{error}");
    }
}
