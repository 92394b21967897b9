use super::*;
use paycode_api::books::OwnerAction;
use wxpay::messages::{BillSummary, LEGACY_COLUMNS, LEGACY_SUMMARY_COLUMNS};

const MCH: &str = "10000100";

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn at(text: &str) -> Millis {
    BusinessDay::default().bill_time(text).unwrap()
}

fn row(out_trade_no: &str, state: &str, fen: u64, time: &str) -> BillRow {
    BillRow {
        trade_time: time.to_owned(),
        appid: "wx2421b1c4370ec43b".to_owned(),
        mch_id: MCH.to_owned(),
        sub_mch_id: "0".to_owned(),
        device_info: "T1".to_owned(),
        transaction_id: format!("42{out_trade_no}"),
        out_trade_no: out_trade_no.to_owned(),
        openid: "oUpF8u".to_owned(),
        trade_type: MICROPAY.to_owned(),
        trade_state: state.to_owned(),
        bank_type: "CMC".to_owned(),
        fee_type: "CNY".to_owned(),
        settlement_total_fee: Fen(fen),
        coupon_fee: Fen::ZERO,
        refund_id: "0".to_owned(),
        out_refund_no: "0".to_owned(),
        refund_fee: Fen::ZERO,
        coupon_refund_fee: Fen::ZERO,
        refund_status: String::new(),
        body: "超市".to_owned(),
        attach: String::new(),
        service_charge: "0.00000".to_owned(),
        rate: "0.60%".to_owned(),
        total_fee: Some(Fen(fen)),
        applied_refund_fee: Some(Fen::ZERO),
    }
}

fn refund_row(out_trade_no: &str, out_refund_no: &str, fen: u64, time: &str) -> BillRow {
    BillRow {
        settlement_total_fee: Fen::ZERO,
        total_fee: Some(Fen::ZERO),
        refund_id: format!("50{out_refund_no}"),
        out_refund_no: out_refund_no.to_owned(),
        refund_fee: Fen(fen),
        applied_refund_fee: Some(Fen(fen)),
        refund_status: "SUCCESS".to_owned(),
        ..row(out_trade_no, REFUND, 0, time)
    }
}

fn bill(rows: Vec<BillRow>) -> BillInput {
    BillInput::Bill(Bill {
        summary: BillSummary {
            trade_count: rows.len() as u64,
            settlement_total_fee: Fen(rows.iter().map(|r| r.settlement_total_fee.0).sum()),
            refund_fee: Fen(rows.iter().map(|r| r.refund_fee.0).sum()),
            coupon_refund_fee: Fen::ZERO,
            service_charge: "0.00000".to_owned(),
            total_fee: None,
            applied_refund_fee: None,
        },
        rows,
    })
}

fn paid(out_trade_no: &str, fen: u64, created: &str, paid: &str) -> StorePayment {
    StorePayment {
        out_trade_no: out_trade_no.to_owned(),
        amount: Fen(fen),
        state: PaymentState::Paid,
        created_at: at(created),
        paid_at: Some(at(paid)),
        money_returned: false,
    }
}

fn unpaid(out_trade_no: &str, fen: u64, state: PaymentState, created: &str) -> StorePayment {
    StorePayment {
        state,
        paid_at: None,
        ..paid(out_trade_no, fen, created, created)
    }
}

fn refund(out_trade_no: &str, out_refund_no: &str, fen: u64, accepted: &str) -> StoreRefund {
    StoreRefund {
        out_refund_no: out_refund_no.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        amount: Fen(fen),
        state: RefundState::Succeeded,
        accepted_at: Some(at(accepted)),
        created_at: at(accepted),
    }
}

fn input(
    day: &str,
    bill: BillInput,
    payments: Vec<StorePayment>,
    refunds: Vec<StoreRefund>,
) -> ReconcileInput {
    ReconcileInput {
        day: date(day),
        scope: AccountScope {
            mch_id: MCH.to_owned(),
            sub_mch_ids: BTreeSet::new(),
        },
        bill,
        payments,
        refunds,
        carried_in: CarryOver::default(),
    }
}

fn run(input: &ReconcileInput) -> DayReport {
    reconcile(input, &Rules::default())
}

fn classes(report: &DayReport) -> Vec<(MismatchClass, String, Option<String>)> {
    report
        .mismatches
        .iter()
        .map(|m| (m.class, m.out_trade_no.clone(), m.out_refund_no.clone()))
        .collect()
}

#[test]
fn a_day_that_agrees_has_no_mismatches_and_equal_totals() {
    let report = run(&input(
        "2026-11-28",
        bill(vec![
            row("P1", SUCCESS, 1230, "2026-11-28 09:00:01"),
            row("P2", SUCCESS, 500, "2026-11-28 12:00:00"),
            refund_row("P1", "R1", 230, "2026-11-28 12:05:00"),
        ]),
        vec![
            paid("P1", 1230, "2026-11-28 09:00:00", "2026-11-28 09:00:01"),
            paid("P2", 500, "2026-11-28 11:59:58", "2026-11-28 12:00:00"),
            // A failed payment WeChat never charged is not in the bill and not a mismatch.
            unpaid("P3", 700, PaymentState::Failed, "2026-11-28 13:00:00"),
        ],
        vec![refund("P1", "R1", 230, "2026-11-28 12:05:00")],
    ));
    assert_eq!(report.bill_status, BillStatus::Received);
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!((report.matched_payments, report.matched_refunds), (2, 1));
    let expected = SideTotals {
        payments: 2,
        payment_fen: Fen(1730),
        refunds: 1,
        refund_fen: Fen(230),
    };
    assert_eq!(report.store_totals, expected);
    assert_eq!(report.bill_totals, expected);
    assert_eq!(report.bill_summary_count, Some(3));
    assert_eq!(report.carried_to_next_day, CarryOver::default());
}

#[test]
fn paid_at_wechat_but_not_here() {
    let report = run(&input(
        "2026-11-28",
        bill(vec![
            row("LOST", SUCCESS, 1000, "2026-11-28 10:00:00"),
            row("FAILED", SUCCESS, 800, "2026-11-28 11:00:00"),
            row("ATTN", SUCCESS, 600, "2026-11-28 11:30:00"),
        ]),
        vec![
            unpaid("FAILED", 800, PaymentState::Failed, "2026-11-28 10:59:00"),
            unpaid(
                "ATTN",
                600,
                PaymentState::NeedsAttention,
                "2026-11-28 11:29:00",
            ),
        ],
        vec![],
    ));
    assert_eq!(
        classes(&report),
        vec![
            (MismatchClass::PaidAtWechatNotHere, "ATTN".into(), None),
            (MismatchClass::PaidAtWechatNotHere, "FAILED".into(), None),
            (MismatchClass::PaidAtWechatNotHere, "LOST".into(), None),
        ]
    );
    let lost = &report.mismatches[2];
    assert_eq!(lost.description, "paid at WeChat but not paid here");
    assert_eq!(lost.store_amount, None, "the store has no such payment");
    assert_eq!(lost.bill_amount, Some(Fen(1000)));
    assert_eq!(lost.time, "2026-11-28 10:00:00");
    assert_eq!(
        lost.actions,
        vec![
            OwnerAction::QueryNow,
            OwnerAction::Refund,
            OwnerAction::MarkExplained
        ]
    );
    let failed = &report.mismatches[1];
    assert_eq!(failed.store_state, Some(PaymentState::Failed));
    assert_eq!(failed.store_amount, Some(Fen(800)));
    assert_eq!(report.bill_totals.payment_fen, Fen(2400));
    assert_eq!(report.store_totals, SideTotals::default());
}

#[test]
fn paid_here_but_not_at_wechat() {
    let report = run(&input(
        "2026-11-28",
        bill(vec![row("BACK", REVOKED, 900, "2026-11-28 15:00:00")]),
        vec![
            paid("GONE", 1500, "2026-11-28 14:00:00", "2026-11-28 14:00:03"),
            // WeChat reversed it after success, yet the store says paid.
            paid("BACK", 900, "2026-11-28 14:59:00", "2026-11-28 14:59:05"),
        ],
        vec![],
    ));
    assert_eq!(
        classes(&report),
        vec![
            (MismatchClass::PaidHereNotAtWechat, "BACK".into(), None),
            (MismatchClass::PaidHereNotAtWechat, "GONE".into(), None),
        ]
    );
    let gone = &report.mismatches[1];
    assert_eq!(gone.bill_amount, None);
    assert_eq!(gone.store_amount, Some(Fen(1500)));
    assert_eq!(gone.time, "2026-11-28 14:00:03");
    assert_eq!(
        gone.actions,
        vec![OwnerAction::QueryNow, OwnerAction::MarkExplained]
    );
    assert_eq!(report.mismatches[0].bill_state.as_deref(), Some(REVOKED));
    assert_eq!(
        report.bill_totals.payments, 0,
        "a reversed row is no income"
    );
    assert_eq!(report.store_totals.payment_fen, Fen(2400));
}

#[test]
fn amounts_differ_for_payments_and_refunds() {
    let report = run(&input(
        "2026-11-28",
        bill(vec![
            row("P1", SUCCESS, 1000, "2026-11-28 09:00:00"),
            refund_row("P1", "R1", 300, "2026-11-28 10:00:00"),
        ]),
        vec![paid(
            "P1",
            1100,
            "2026-11-28 08:59:58",
            "2026-11-28 09:00:00",
        )],
        vec![refund("P1", "R1", 400, "2026-11-28 10:00:00")],
    ));
    assert_eq!(
        classes(&report),
        vec![
            (MismatchClass::AmountsDiffer, "P1".into(), None),
            (MismatchClass::AmountsDiffer, "P1".into(), Some("R1".into())),
        ]
    );
    assert_eq!(report.mismatches[0].store_amount, Some(Fen(1100)));
    assert_eq!(report.mismatches[0].bill_amount, Some(Fen(1000)));
    assert_eq!(report.mismatches[1].store_amount, Some(Fen(400)));
    assert_eq!(report.mismatches[1].bill_amount, Some(Fen(300)));
    assert_eq!((report.matched_payments, report.matched_refunds), (0, 0));
}

#[test]
fn refunds_here_not_in_the_bill_and_in_the_bill_not_here() {
    let mut failed = refund("P1", "R3", 100, "2026-11-28 11:00:00");
    failed.state = RefundState::Failed;
    failed.accepted_at = None;
    let report = run(&input(
        "2026-11-28",
        bill(vec![
            row("P1", SUCCESS, 1000, "2026-11-28 09:00:00"),
            // Made in the merchant platform, outside Paycode.
            refund_row("P1", "OUTSIDE", 200, "2026-11-28 12:00:00"),
            // Paycode has this refund as failed.
            refund_row("P1", "R3", 100, "2026-11-28 11:00:00"),
        ]),
        vec![paid(
            "P1",
            1000,
            "2026-11-28 08:59:58",
            "2026-11-28 09:00:00",
        )],
        vec![refund("P1", "R1", 300, "2026-11-28 10:00:00"), failed],
    ));
    assert_eq!(
        classes(&report),
        vec![
            (
                MismatchClass::RefundHereNotInBill,
                "P1".into(),
                Some("R1".into())
            ),
            (
                MismatchClass::RefundInBillNotHere,
                "P1".into(),
                Some("OUTSIDE".into())
            ),
            (
                MismatchClass::RefundInBillNotHere,
                "P1".into(),
                Some("R3".into())
            ),
        ]
    );
    let outside = &report.mismatches[1];
    assert_eq!(outside.description, "a refund in the bill is not here");
    assert_eq!(outside.store_amount, None);
    assert_eq!(outside.bill_amount, Some(Fen(200)));
    assert_eq!(outside.store_state, Some(PaymentState::Paid));
    assert_eq!(report.mismatches[2].store_amount, Some(Fen(100)));
    assert_eq!(
        report.mismatches[0].description,
        "a refund here is not in the bill"
    );
    assert_eq!(report.matched_payments, 1);
    assert_eq!(
        report.store_totals.refunds, 1,
        "a failed refund is not counted"
    );
    assert_eq!(report.bill_totals.refund_fen, Fen(300));
}

#[test]
fn rows_paycode_never_made_are_listed_apart() {
    let jsapi = BillRow {
        trade_type: "JSAPI".to_owned(),
        ..row("WEB1", SUCCESS, 5000, "2026-11-28 10:00:00")
    };
    let native_refund = BillRow {
        trade_type: "NATIVE".to_owned(),
        ..refund_row("WEB2", "WR2", 100, "2026-11-28 10:30:00")
    };
    let other_sub = BillRow {
        sub_mch_id: "1900009999".to_owned(),
        ..row("OTHER", SUCCESS, 700, "2026-11-28 11:00:00")
    };
    let ours = BillRow {
        sub_mch_id: "1900000109".to_owned(),
        ..row("P1", SUCCESS, 1000, "2026-11-28 12:00:00")
    };
    let mut provider = input(
        "2026-11-28",
        bill(vec![jsapi, native_refund, other_sub, ours]),
        vec![paid(
            "P1",
            1000,
            "2026-11-28 11:59:58",
            "2026-11-28 12:00:00",
        )],
        vec![],
    );
    provider.scope.sub_mch_ids = ["1900000109".to_owned()].into();
    let report = run(&provider);
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!(report.matched_payments, 1);
    let listed: Vec<(&str, &str)> = report
        .not_from_paycode
        .iter()
        .map(|row| (row.out_trade_no.as_str(), row.reason.as_str()))
        .collect();
    // Sorted by time.
    assert_eq!(
        listed,
        vec![
            ("WEB1", "trade type JSAPI, not a payment-code sale"),
            ("WEB2", "trade type NATIVE, not a payment-code sale"),
            (
                "OTHER",
                "sub-merchant 1900009999, not one of this deployment's stores"
            ),
        ]
    );
    assert_eq!(
        report.not_from_paycode[1].out_refund_no.as_deref(),
        Some("WR2")
    );
    assert_eq!(report.not_from_paycode[1].amount, Fen(100));
    assert_eq!(
        report.bill_totals,
        SideTotals {
            payments: 1,
            payment_fen: Fen(1000),
            refunds: 0,
            refund_fen: Fen::ZERO
        },
        "rows not from Paycode stay out of the bill's side"
    );
    assert_eq!(report.bill_summary_count, Some(4));

    // On a direct merchant's bill, another merchant number or a sub-merchant is foreign.
    let direct = run(&input(
        "2026-11-28",
        bill(vec![
            BillRow {
                mch_id: "10000999".to_owned(),
                ..row("X1", SUCCESS, 100, "2026-11-28 10:00:00")
            },
            BillRow {
                sub_mch_id: "1900000109".to_owned(),
                ..row("X2", SUCCESS, 100, "2026-11-28 10:00:00")
            },
        ]),
        vec![],
        vec![],
    ));
    assert!(direct.mismatches.is_empty());
    assert_eq!(direct.not_from_paycode.len(), 2);
}

#[test]
fn a_payment_crossing_midnight_is_matched_on_the_next_days_bill() {
    // Created 23:59:50; WeChat's success time is 00:00:05 the next day, so the row is on the
    // next day's bill. The store learnt of the success a moment later.
    let payment = paid("MID", 1000, "2026-11-28 23:59:50", "2026-11-29 00:00:06");
    let day1 = run(&input(
        "2026-11-28",
        bill(vec![]),
        vec![payment.clone()],
        vec![],
    ));
    assert!(day1.mismatches.is_empty(), "{:?}", day1.mismatches);
    assert_eq!(day1.store_totals, SideTotals::default());
    let mut next = input(
        "2026-11-29",
        bill(vec![row("MID", SUCCESS, 1000, "2026-11-29 00:00:05")]),
        vec![payment],
        vec![],
    );
    next.carried_in = day1.carried_to_next_day;
    let day2 = run(&next);
    assert!(day2.mismatches.is_empty(), "{:?}", day2.mismatches);
    assert_eq!(day2.matched_payments, 1);
}

#[test]
fn an_item_near_midnight_is_carried_and_reported_only_if_the_next_bill_lacks_it_too() {
    // The store's clock says 23:59:58, WeChat's success time is 00:00:05 the next day.
    let early_clock = paid("EDGE", 1000, "2026-11-28 23:59:50", "2026-11-28 23:59:58");
    let late_refund = refund("P0", "REDGE", 300, "2026-11-28 23:57:00");
    let day1 = run(&input(
        "2026-11-28",
        bill(vec![]),
        vec![early_clock.clone()],
        vec![late_refund.clone()],
    ));
    assert!(day1.mismatches.is_empty(), "{:?}", day1.mismatches);
    assert_eq!(day1.store_totals.payments, 1);
    let carried = &day1.carried_to_next_day;
    assert_eq!(carried.payments.len(), 1);
    assert_eq!(carried.payments[0].out_trade_no, "EDGE");
    assert_eq!(carried.payments[0].from_day, "2026-11-28");
    assert_eq!(carried.refunds[0].out_refund_no, "REDGE");

    // The next bill has both: matched, nothing carried further.
    let mut found = input(
        "2026-11-29",
        bill(vec![
            row("EDGE", SUCCESS, 1000, "2026-11-29 00:00:05"),
            refund_row("P0", "REDGE", 300, "2026-11-29 00:00:01"),
        ]),
        vec![early_clock.clone()],
        vec![late_refund.clone()],
    );
    found.carried_in = day1.carried_to_next_day.clone();
    let day2 = run(&found);
    assert!(day2.mismatches.is_empty(), "{:?}", day2.mismatches);
    assert_eq!((day2.matched_payments, day2.matched_refunds), (1, 1));
    assert_eq!(day2.carried_to_next_day, CarryOver::default());

    // The next bill lacks both: now they are mismatches, naming the day they came from.
    let mut missing = input(
        "2026-11-29",
        bill(vec![]),
        vec![early_clock],
        vec![late_refund],
    );
    missing.carried_in = day1.carried_to_next_day;
    let day2 = run(&missing);
    assert_eq!(
        classes(&day2),
        vec![
            (MismatchClass::PaidHereNotAtWechat, "EDGE".into(), None),
            (
                MismatchClass::RefundHereNotInBill,
                "P0".into(),
                Some("REDGE".into())
            ),
        ]
    );
    assert!(
        day2.mismatches
            .iter()
            .all(|m| m.carried_from.as_deref() == Some("2026-11-28"))
    );
    assert_eq!(
        day2.carried_to_next_day,
        CarryOver::default(),
        "carried once only"
    );

    // Far from midnight, a missing payment is reported at once.
    let noon = run(&input(
        "2026-11-28",
        bill(vec![]),
        vec![paid(
            "NOON",
            100,
            "2026-11-28 11:49:00",
            "2026-11-28 11:50:00",
        )],
        vec![],
    ));
    assert_eq!(noon.mismatches.len(), 1);
    assert!(noon.carried_to_next_day.payments.is_empty());
}

#[test]
fn a_row_the_bill_lists_a_day_early_is_not_looked_for_again() {
    // WeChat's success at 23:59:58; the store learnt of it at 00:00:02 the next day.
    let late_clock = paid("LATE", 500, "2026-11-28 23:59:40", "2026-11-29 00:00:02");
    let day1 = run(&input(
        "2026-11-28",
        bill(vec![row("LATE", SUCCESS, 500, "2026-11-28 23:59:58")]),
        vec![late_clock.clone()],
        vec![],
    ));
    assert!(day1.mismatches.is_empty(), "{:?}", day1.mismatches);
    assert_eq!(day1.matched_payments, 1);
    assert_eq!(
        day1.carried_to_next_day.matched_early_payments,
        vec!["LATE".to_owned()]
    );
    let mut next = input("2026-11-29", bill(vec![]), vec![late_clock.clone()], vec![]);
    next.carried_in = day1.carried_to_next_day;
    let day2 = run(&next);
    assert!(day2.mismatches.is_empty(), "{:?}", day2.mismatches);
    // Without the carry-over the next day would report it.
    let alone = run(&input("2026-11-29", bill(vec![]), vec![late_clock], vec![]));
    assert_eq!(alone.mismatches.len(), 1);
}

#[test]
fn no_bill_is_an_empty_day_only_when_the_store_has_no_trade() {
    let quiet = run(&input(
        "2026-11-28",
        BillInput::NoBill,
        vec![unpaid(
            "F1",
            100,
            PaymentState::Failed,
            "2026-11-28 10:00:00",
        )],
        vec![],
    ));
    assert_eq!(quiet.bill_status, BillStatus::NoBillNoTrades);
    assert!(quiet.mismatches.is_empty());
    assert_eq!(quiet.bill_summary_count, None);

    let busy = run(&input(
        "2026-11-28",
        BillInput::NoBill,
        vec![paid(
            "P1",
            100,
            "2026-11-28 10:00:00",
            "2026-11-28 10:00:02",
        )],
        vec![],
    ));
    assert_eq!(busy.bill_status, BillStatus::NoBillButStoreHasTrades);
    assert_eq!(
        classes(&busy),
        vec![(MismatchClass::PaidHereNotAtWechat, "P1".into(), None)]
    );

    let mut carried_only = input("2026-11-29", BillInput::NoBill, vec![], vec![]);
    carried_only.carried_in.payments.push(CarriedPayment {
        out_trade_no: "EDGE".to_owned(),
        amount: Fen(100),
        from_day: "2026-11-28".to_owned(),
        time: "2026-11-28 23:59:58".to_owned(),
    });
    let report = run(&carried_only);
    assert_eq!(report.bill_status, BillStatus::NoBillButStoreHasTrades);
    assert_eq!(report.mismatches.len(), 1);
}

#[test]
fn a_reversed_charge_of_a_cancelled_payment_is_a_mark_not_a_mismatch() {
    let mut recorded = unpaid("C2", 300, PaymentState::Cancelled, "2026-11-28 16:00:00");
    recorded.money_returned = true;
    let report = run(&input(
        "2026-11-28",
        bill(vec![
            row("C1", REVOKED, 2000, "2026-11-28 15:00:30"),
            row("C2", REVOKED, 300, "2026-11-28 16:00:20"),
        ]),
        vec![
            unpaid("C1", 2000, PaymentState::Cancelled, "2026-11-28 15:00:00"),
            recorded,
        ],
        vec![],
    ));
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!(
        report.marks,
        vec![
            Mark {
                out_trade_no: "C1".to_owned(),
                fact: "money was taken and returned".to_owned(),
                amount: Fen(2000),
                store_state: PaymentState::Cancelled,
                already_recorded: false,
            },
            Mark {
                out_trade_no: "C2".to_owned(),
                fact: "money was taken and returned".to_owned(),
                amount: Fen(300),
                store_state: PaymentState::Cancelled,
                already_recorded: true,
            },
        ]
    );
    assert_eq!(report.bill_totals.payments, 0);
}

#[test]
fn the_same_inputs_give_the_same_report_in_any_order() {
    let payments = vec![
        paid("A", 100, "2026-11-28 09:00:00", "2026-11-28 09:00:01"),
        paid("B", 200, "2026-11-28 10:00:00", "2026-11-28 10:00:01"),
        unpaid("C", 300, PaymentState::Cancelled, "2026-11-28 11:00:00"),
        paid("D", 400, "2026-11-28 23:59:00", "2026-11-28 23:59:30"),
    ];
    let rows = vec![
        row("A", SUCCESS, 150, "2026-11-28 09:00:01"),
        row("C", REVOKED, 300, "2026-11-28 11:00:10"),
        row("E", SUCCESS, 500, "2026-11-28 12:00:00"),
        BillRow {
            trade_type: "NATIVE".to_owned(),
            ..row("W", SUCCESS, 900, "2026-11-28 13:00:00")
        },
        refund_row("A", "RA", 50, "2026-11-28 14:00:00"),
    ];
    let refunds = vec![refund("B", "RB", 20, "2026-11-28 15:00:00")];
    let forward = input(
        "2026-11-28",
        bill(rows.clone()),
        payments.clone(),
        refunds.clone(),
    );
    let first = run(&forward);
    assert_eq!(first, run(&forward));
    let backward = input(
        "2026-11-28",
        bill(rows.into_iter().rev().collect()),
        payments.into_iter().rev().collect(),
        refunds,
    );
    let reordered = run(&backward);
    assert_eq!(first, reordered);
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&reordered).unwrap()
    );
    assert_eq!(first.mismatches.len(), 5, "{:?}", first.mismatches);
    assert_eq!(first.marks.len(), 1);
    assert_eq!(first.not_from_paycode.len(), 1);
    assert_eq!(first.carried_to_next_day.payments.len(), 1);
}

#[test]
fn the_report_serialises_in_plain_words() {
    let report = run(&input(
        "2026-11-28",
        bill(vec![row("LOST", SUCCESS, 1000, "2026-11-28 10:00:00")]),
        vec![],
        vec![],
    ));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["day"], "2026-11-28");
    assert_eq!(json["bill_status"], "received");
    assert_eq!(json["mismatches"][0]["class"], "paid_at_wechat_not_here");
    assert_eq!(
        json["mismatches"][0]["actions"],
        serde_json::json!(["query_now", "refund", "mark_explained"])
    );
    assert_eq!(json["bill_totals"]["payment_fen"], 1000);
    let back: DayReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn a_parsed_bill_in_the_older_format_reconciles() {
    let csv = format!(
        "{}\r\n`2026-11-28 09:30:00,`wx2421b1c4370ec43b,`{MCH},`0,`T2,`4200000002,`P2,`oUpF8u,`MICROPAY,`SUCCESS,`CMC,`CNY,`8.00,`0.00,`0,`0,`0.00,`0.00,`,`,`早餐,`,`0.04800,`0.60%\r\n{}\r\n`1,`8.00,`0.00,`0.00,`0.04800\r\n",
        LEGACY_COLUMNS.join(","),
        LEGACY_SUMMARY_COLUMNS.join(",")
    );
    let parsed = Bill::parse(&csv).unwrap();
    let report = run(&input(
        "2026-11-28",
        BillInput::Bill(parsed),
        vec![paid(
            "P2",
            800,
            "2026-11-28 09:29:58",
            "2026-11-28 09:30:00",
        )],
        vec![],
    ));
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!(report.matched_payments, 1);
    assert_eq!(report.bill_summary_settlement_fen, Some(Fen(800)));
}

#[test]
fn an_order_listed_as_paid_and_as_reversed_counts_as_reversed() {
    let cancelled = unpaid("C1", 2000, PaymentState::Cancelled, "2026-11-28 15:00:00");
    let paid_row = row("C1", SUCCESS, 2000, "2026-11-28 15:00:05");
    let revoked_row = row("C1", REVOKED, 2000, "2026-11-28 15:00:30");
    for rows in [
        vec![paid_row.clone(), revoked_row.clone()],
        vec![revoked_row, paid_row],
    ] {
        let report = run(&input(
            "2026-11-28",
            bill(rows),
            vec![cancelled.clone()],
            vec![],
        ));
        assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
        assert_eq!(report.marks.len(), 1);
    }
}

#[test]
fn a_refund_of_an_older_payment_keeps_its_amount_in_the_mismatch() {
    // The refunded payment is from last week, so the caller did not pass it.
    let report = run(&input(
        "2026-11-28",
        bill(vec![]),
        vec![],
        vec![refund("OLD", "R9", 450, "2026-11-28 10:00:00")],
    ));
    assert_eq!(
        classes(&report),
        vec![(
            MismatchClass::RefundHereNotInBill,
            "OLD".into(),
            Some("R9".into())
        )]
    );
    assert_eq!(report.mismatches[0].store_amount, Some(Fen(450)));
    assert_eq!(report.mismatches[0].store_state, None);
    assert_eq!(report.mismatches[0].time, "2026-11-28 10:00:00");
}

#[test]
fn a_carried_payment_the_next_bill_shows_as_reversed_is_not_matched() {
    let mut next = input(
        "2026-11-29",
        bill(vec![row("EDGE", REVOKED, 1000, "2026-11-29 00:00:40")]),
        vec![],
        vec![],
    );
    next.carried_in.payments.push(CarriedPayment {
        out_trade_no: "EDGE".to_owned(),
        amount: Fen(1000),
        from_day: "2026-11-28".to_owned(),
        time: "2026-11-28 23:59:58".to_owned(),
    });
    let report = run(&next);
    assert_eq!(
        classes(&report),
        vec![(MismatchClass::PaidHereNotAtWechat, "EDGE".into(), None)]
    );
    assert_eq!(
        report.mismatches[0].carried_from.as_deref(),
        Some("2026-11-28")
    );
    assert_eq!(report.mismatches[0].bill_state.as_deref(), Some(REVOKED));
    assert_eq!(report.matched_payments, 0);
}
