//! Throughput of the protocol core on one core: sign + encode a micropay request, and
//! decode + verify a micropay reply. Run with `cargo bench -p wxpay --bench roundtrip`;
//! criterion prints the time per operation and `thrpt` in operations per second.

// criterion_group! and criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wxpay::{ApiKey, Params, SignType, sign, xml};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

fn micropay_request() -> Params {
    [
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("nonce_str", "ibuaiVcKdpRxkhJA5mOq1zXkD9p3Lw7a"),
        ("body", "小张南山店-超市"),
        ("out_trade_no", "P20261128T1A000000001"),
        ("total_fee", "1230"),
        ("spbill_create_ip", "192.168.1.20"),
        ("auth_code", "134567890123455678"),
        ("device_info", "T1"),
        ("sign_type", "HMAC-SHA256"),
    ]
    .into_iter()
    .collect()
}

fn micropay_reply(key: &ApiKey, sign_type: SignType) -> String {
    let mut reply: Params = [
        ("return_code", "SUCCESS"),
        ("return_msg", "OK"),
        ("result_code", "SUCCESS"),
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("device_info", "T1"),
        ("nonce_str", "GOp3TRyMXzbMlkunGOp3TRyMXzbMlkun"),
        ("openid", "oUpF8uN95-Ptaags6E_roPHg7AG0"),
        ("is_subscribe", "N"),
        ("trade_type", "MICROPAY"),
        ("bank_type", "CCB_DEBIT"),
        ("total_fee", "1230"),
        ("cash_fee", "1230"),
        ("fee_type", "CNY"),
        ("transaction_id", "4200000443201912243367650720"),
        ("out_trade_no", "P20261128T1A000000001"),
        ("attach", ""),
        ("time_end", "20261128120001"),
    ]
    .into_iter()
    .collect();
    reply.insert("sign", sign::sign(&reply, key, sign_type));
    xml::encode(&reply)
}

fn bench(c: &mut Criterion) {
    let key = ApiKey::new(KEY);
    let mut group = c.benchmark_group("micropay");
    group.throughput(Throughput::Elements(1));
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let request = micropay_request();
        let reply = micropay_reply(&key, sign_type);
        let name = sign_type.as_str();
        group.bench_function(format!("{name}/sign+encode request"), |b| {
            b.iter(|| {
                let mut params = request.clone();
                params.insert("sign", sign::sign(&params, &key, sign_type));
                black_box(xml::encode(&params))
            })
        });
        group.bench_function(format!("{name}/decode+verify reply"), |b| {
            b.iter(|| {
                let params = xml::decode(black_box(reply.as_bytes())).expect("the reply decodes");
                sign::verify(&params, &key, sign_type).expect("the reply verifies");
                black_box(params)
            })
        });
        let decoded = xml::decode(reply.as_bytes()).expect("the reply decodes");
        group.bench_function(format!("{name}/decode reply"), |b| {
            b.iter(|| {
                black_box(xml::decode(black_box(reply.as_bytes())).expect("the reply decodes"))
            })
        });
        group.bench_function(format!("{name}/verify reply"), |b| {
            b.iter(|| {
                sign::verify(black_box(&decoded), &key, sign_type).expect("the reply verifies")
            })
        });
        group.bench_function(format!("{name}/round trip"), |b| {
            b.iter(|| {
                let mut params = request.clone();
                params.insert("sign", sign::sign(&params, &key, sign_type));
                black_box(xml::encode(&params));
                let params = xml::decode(black_box(reply.as_bytes())).expect("the reply decodes");
                sign::verify(&params, &key, sign_type).expect("the reply verifies");
                black_box(params)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
