//! The seed stories, end to end on the in-memory pipeline.

use outbox_application::{RequestMeta, Target};
use outbox_seeds::reactions::{
    Invoice, Invoicing, OrderTracking, Shipment, Shipping, TrackingEntry,
};
use outbox_seeds_domain::order::{Order, OrderCommand, OrderStatus};
use outbox_seeds_domain::repair::{Repair, RepairCommand};
use outbox_tests::{
    audit_at_rest, keyed, line_item, memory_pipeline, open_repair, place_order, runtime, settle_all,
};
use serde_json::json;

#[test]
fn a_completed_repair_is_invoiced_and_the_customer_notified_once() {
    runtime().block_on(async {
        let (pipeline, _, outside) = memory_pipeline(10);
        let meta = RequestMeta::default();
        let opened = pipeline
            .submit::<Repair>(Target::New, &open_repair("Ada"), &meta, 1)
            .await
            .unwrap();
        let id = Target::Existing(opened.aggregate.aggregate_id);
        for command in [
            RepairCommand::StartWork,
            line_item(1_250),
            line_item(4_999),
            RepairCommand::CompleteRepair,
        ] {
            pipeline
                .submit::<Repair>(id, &command, &meta, 1)
                .await
                .unwrap();
        }
        assert!(settle_all(&pipeline).await);
        assert_eq!(audit_at_rest(&pipeline).await, vec![]);

        let invoices = pipeline.inbox.effects_of("invoicing");
        assert_eq!(invoices.len(), 1);
        assert_eq!(invoices[0].kind, Invoicing::EFFECT);
        let invoice: Invoice = serde_json::from_value(invoices[0].data.clone()).unwrap();
        assert_eq!(invoice.amount_cents, 6_249);
        assert_eq!(invoice.customer, "Ada");
        assert_eq!(invoice.repair_id, opened.aggregate.aggregate_id);
        assert_eq!(
            outside
                .documents
                .documents()
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            vec![invoice.document.clone()],
            "one invoice document, the one recorded"
        );
        let emails = outside.mailer.sent();
        assert_eq!(emails.len(), 1, "one email: {emails:?}");
        let (key, email) = &emails[0];
        assert!(key.starts_with("customer-notification/"), "{key}");
        assert_eq!(email.to.as_str(), "ada@example.com");
        assert_eq!(email.subject, "Your vehicle B-XY 123 is ready");
        assert!(email.text.contains("the total is 62.49."), "{}", email.text);
        assert_eq!(pipeline.stats().published, 5);
        let (state, version) = pipeline
            .commands
            .load::<Repair>(opened.aggregate.aggregate_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(version, outbox_domain::Version::new(5));
        assert_eq!(
            state.unwrap().total_cents.map(outbox_domain::Money::cents),
            Some(6_249)
        );
    });
}

#[test]
fn an_order_moved_through_its_statuses_is_shipped_and_tracked_in_order() {
    runtime().block_on(async {
        let (pipeline, _, _) = memory_pipeline(10);
        let meta = RequestMeta::default();
        let placed = pipeline
            .submit::<Order>(Target::New, &place_order("Grace", 2), &meta, 1)
            .await
            .unwrap();
        let id = Target::Existing(placed.aggregate.aggregate_id);
        for to in [
            OrderStatus::Preparing,
            OrderStatus::ReadyForPickup,
            OrderStatus::PickedUp,
            OrderStatus::Delivered,
        ] {
            pipeline
                .submit::<Order>(id, &OrderCommand::ChangeStatus { to }, &meta, 1)
                .await
                .unwrap();
        }
        assert!(settle_all(&pipeline).await);
        assert_eq!(audit_at_rest(&pipeline).await, vec![]);

        let shipments = pipeline.inbox.effects_of("shipping");
        assert_eq!(shipments.len(), 1);
        assert_eq!(shipments[0].kind, Shipping::EFFECT);
        let shipment: Shipment = serde_json::from_value(shipments[0].data.clone()).unwrap();
        assert_eq!(shipment.units, 4);
        let restaurant = pipeline.inbox.effects_of("restaurant-notification");
        assert_eq!(restaurant.len(), 1);
        assert_eq!(
            restaurant[0].data["message"],
            json!("New order: 2 × SKU-0, 2 × SKU-1")
        );
        let tracking: Vec<TrackingEntry> = pipeline
            .inbox
            .effects_of("order-tracking")
            .into_iter()
            .inspect(|effect| assert_eq!(effect.kind, OrderTracking::EFFECT))
            .map(|effect| serde_json::from_value(effect.data).unwrap())
            .collect();
        let statuses: Vec<OrderStatus> = tracking.iter().map(|entry| entry.status).collect();
        assert_eq!(
            statuses,
            [
                OrderStatus::Accepted,
                OrderStatus::Preparing,
                OrderStatus::ReadyForPickup,
                OrderStatus::PickedUp,
                OrderStatus::Delivered
            ]
        );
    });
}

#[test]
fn a_cancelled_order_tells_the_restaurant_to_stop() {
    runtime().block_on(async {
        let (pipeline, _, _) = memory_pipeline(10);
        let meta = RequestMeta::default();
        let placed = pipeline
            .submit::<Order>(Target::New, &place_order("Grace", 1), &meta, 1)
            .await
            .unwrap();
        let id = Target::Existing(placed.aggregate.aggregate_id);
        pipeline
            .submit::<Order>(id, &OrderCommand::CancelOrder, &meta, 1)
            .await
            .unwrap();
        assert!(settle_all(&pipeline).await);
        let notices = pipeline.inbox.effects_of("restaurant-notification");
        assert_eq!(notices.len(), 2);
        assert_eq!(
            notices[1].data["message"],
            json!("Order cancelled: stop preparing it")
        );
        assert_eq!(audit_at_rest(&pipeline).await, vec![]);
    });
}

#[test]
fn a_lost_reply_and_a_retry_with_the_same_key_record_one_set_of_events() {
    runtime().block_on(async {
        let (pipeline, store, _) = memory_pipeline(10);
        pipeline
            .store
            .faults()
            .inject(outbox_simulation::faults::StoreFault::FailAfterCommit);
        let outcome = pipeline
            .submit::<Repair>(Target::New, &open_repair("Ada"), &keyed("open-1"), 3)
            .await
            .unwrap();
        assert!(outcome.replayed, "the retry must replay the first commit");
        assert_eq!(store.outbox().len(), 1);
        let again = pipeline
            .submit::<Repair>(Target::New, &open_repair("Ada"), &keyed("open-1"), 1)
            .await
            .unwrap();
        assert_eq!(again.event_ids, outcome.event_ids);
        assert_eq!(store.outbox().len(), 1);
    });
}

#[test]
fn a_malformed_outbox_record_is_dead_lettered_and_does_not_block_the_stream() {
    runtime().block_on(async {
        let (pipeline, _, _) = memory_pipeline(10);
        pipeline.write_poison("foreign").await.unwrap();
        pipeline
            .submit::<Repair>(Target::New, &open_repair("Ada"), &RequestMeta::default(), 1)
            .await
            .unwrap();
        assert!(settle_all(&pipeline).await);
        let letters = pipeline.dead_letters.letters();
        assert_eq!(letters.len(), 1);
        assert!(letters[0].reason.contains("not an outbox event"));
        assert_eq!(pipeline.stats().published, 1);
        assert_eq!(audit_at_rest(&pipeline).await, vec![]);
    });
}
