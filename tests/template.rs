//! `template.yaml` held against the code: it is exactly what the reference
//! service's declaration renders; every consumer's rule pattern (classic bus)
//! and subscriber filter (Custom Event Bus) is its reaction's declared
//! subscription under its aggregate's declared source, FIFO exactly for the
//! ordered ones; every function runs the binary it names, and its environment
//! is exactly what that binary reads; the dashboard, resolved in every variant
//! of the stack, is JSON and shows every alarm on a graph of its metric.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_yaml::Value;

use outbox_application::Service;
use outbox_bootstrap::deploy::logical_id;
use outbox_bootstrap::lambda::config::{
    CommandApiConfig, ConsumerConfig, RelayConfig, Variables, CONSUMER_NAME,
};

/// The service the template deploys.
fn service() -> Service {
    outbox_reference::service(&outbox_memory::MemoryOutside::new().ports())
}

/// The committed file at `path` from the repository root.
fn committed(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(path).unwrap()
}

/// `template.yaml`.
fn template() -> Value {
    serde_yaml::from_str(&committed("template.yaml")).unwrap()
}

/// The nested stack of the Custom Event Bus and its subscribers.
fn custom_bus() -> Value {
    serde_yaml::from_str(&committed("stacks/custom-bus.yaml")).unwrap()
}

/// The nested stack of the pipe relay.
fn pipe() -> Value {
    serde_yaml::from_str(&committed("stacks/pipe.yaml")).unwrap()
}

#[test]
fn the_committed_templates_are_the_ones_the_declaration_renders() {
    let rendered = outbox_bootstrap::deploy::templates(&service());
    assert_eq!(rendered.len(), 3, "the template and its two nested stacks");
    for file in rendered {
        assert!(
            committed(file.path) == file.text,
            "{} is stale: run `cargo run --bin outbox-local -- template`",
            file.path
        );
    }
}

/// The nested stack `name` of `template.yaml`: created exactly under
/// `condition`, from the committed file `path`.
fn nested<'t>(template: &'t Value, name: &str, condition: &str, path: &str) -> &'t Value {
    let stack = resource(template, name);
    assert_eq!(stack["Type"].as_str(), Some("AWS::CloudFormation::Stack"));
    assert_eq!(stack["Condition"].as_str(), Some(condition), "{name}");
    assert_eq!(
        stack["Properties"]["TemplateURL"].as_str(),
        Some(path),
        "{name}"
    );
    &stack["Properties"]["Parameters"]
}

fn resource<'t>(template: &'t Value, name: &str) -> &'t Value {
    template["Resources"]
        .get(name)
        .unwrap_or_else(|| panic!("template.yaml has no resource {name}"))
}

fn resources_of_type<'t>(template: &'t Value, kind: &str) -> Vec<(&'t str, &'t Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().unwrap(), r))
        .collect()
}

#[test]
fn each_consumer_rule_routes_exactly_its_reactions_declared_subscription() {
    let template = template();
    let sources = service().sources();
    let mut expected_rules = BTreeSet::new();
    for reaction in service().consumers().to_vec() {
        let name = format!("{}Rule", logical_id(reaction.name()));
        let rule = resource(&template, &name);
        let pattern: serde_json::Value =
            serde_json::to_value(&rule["Properties"]["EventPattern"]).unwrap();
        assert_eq!(
            pattern,
            reaction.subscription().event_pattern(&sources),
            "{name} routes what {} subscribes to",
            reaction.name()
        );
        expected_rules.insert(name);
    }
    let rules: BTreeSet<String> = resources_of_type(&template, "AWS::Events::Rule")
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    assert_eq!(rules, expected_rules, "a rule per consumer and no other");
}

#[test]
fn each_consumer_subscriber_filters_its_subscription_and_is_fifo_exactly_when_ordered() {
    let template = template();
    let custom_bus = custom_bus();
    nested(
        &template,
        "CustomBusStack",
        "CustomBus",
        "stacks/custom-bus.yaml",
    );
    let mut expected = BTreeSet::new();
    for reaction in service().consumers().to_vec() {
        let subscription = reaction.subscription();
        let name = format!("{}Subscriber", logical_id(reaction.name()));
        let subscriber = resource(&custom_bus, &name);
        let properties = &subscriber["Properties"];
        let filter = &properties["FilterConfiguration"]["Filters"][0];
        assert_eq!(
            filter["Scope"].as_str(),
            Some("DATA"),
            "{name} filters the envelope"
        );
        let pattern: serde_json::Value =
            serde_json::from_str(filter["Pattern"].as_str().unwrap()).unwrap();
        assert_eq!(pattern, subscription.payload_pattern(), "{name}");
        assert_eq!(
            properties["Transformer"]["Type"].as_str(),
            Some("RAW"),
            "{name} delivers the envelope"
        );
        let fifo = properties["Type"].as_str() == Some("FIFO");
        assert_eq!(
            fifo,
            subscription.is_ordered(),
            "{name} is FIFO exactly when ordered"
        );
        let group = &properties["InvokeConfiguration"]["SqsParameters"]["MessageGroupId"];
        assert_eq!(
            group.as_str() == Some("{% $events.SystemMetadata.EventGroupId %}"),
            subscription.is_ordered(),
            "{name}: an ordered consumer's queue is grouped by aggregate"
        );
        let queue = logical_id(reaction.name());
        for queue in [format!("{queue}Queue"), format!("{queue}DeadLetterQueue")] {
            let fifo_queue = &resource(&template, &queue)["Properties"]["FifoQueue"];
            assert_eq!(
                !fifo_queue.is_null(),
                subscription.is_ordered(),
                "{queue} is FIFO on a Custom Event Bus exactly when ordered"
            );
        }
        expected.insert(name);
    }
    let subscribers: BTreeSet<String> = resources_of_type(&custom_bus, "AWS::EventsV2::Subscriber")
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    assert_eq!(
        subscribers, expected,
        "a subscriber per consumer and no other"
    );
}

/// The variable names a function's template sets.
fn environment(function: &Value) -> BTreeSet<String> {
    function["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .map(|vars| {
            vars.keys()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_reads_exactly(name: &str, function: &Value, binary: &str, variables: Variables) {
    assert_eq!(
        function["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some(binary),
        "{name} runs {binary}"
    );
    assert_eq!(
        function["Metadata"]["BuildMethod"].as_str(),
        Some("rust-cargolambda")
    );
    let set = environment(function);
    let required: BTreeSet<String> = variables.required.iter().map(|v| (*v).to_owned()).collect();
    let known: BTreeSet<String> = variables
        .required
        .iter()
        .chain(variables.optional)
        .map(|v| (*v).to_owned())
        .collect();
    assert!(
        set.is_superset(&required),
        "{name} sets {required:?}, has {set:?}"
    );
    assert!(
        set.is_subset(&known),
        "{name} sets only what {binary} reads: {set:?}"
    );
}

#[test]
fn every_function_runs_its_binary_with_exactly_the_variables_it_reads() {
    let template = template();
    let functions = resources_of_type(&template, "AWS::Serverless::Function");
    assert_eq!(
        functions.len(),
        2 + service().consumers().to_vec().len(),
        "API, relay, consumers"
    );
    assert_reads_exactly(
        "CommandApiFunction",
        resource(&template, "CommandApiFunction"),
        "command-api",
        CommandApiConfig::VARIABLES,
    );
    assert_reads_exactly(
        "OutboxRelayFunction",
        resource(&template, "OutboxRelayFunction"),
        "outbox-relay",
        RelayConfig::VARIABLES,
    );
    for reaction in service().consumers().to_vec() {
        let name = format!("{}Function", logical_id(reaction.name()));
        let function = resource(&template, &name);
        assert_reads_exactly(
            &name,
            function,
            "outbox-consumer",
            ConsumerConfig::VARIABLES,
        );
        assert_eq!(
            function["Properties"]["Environment"]["Variables"][CONSUMER_NAME].as_str(),
            Some(reaction.name()),
            "{name} runs the consumer it is named for"
        );
    }
}

#[test]
fn both_relays_filter_outbox_inserts_and_never_retry_forever() {
    let template = template();
    let mapping = &resource(&template, "OutboxRelayMapping")["Properties"];
    let pipe = pipe();
    let pipe = &resource(&pipe, "OutboxPipe")["Properties"]["SourceParameters"];
    let filter = |value: &Value| -> serde_json::Value {
        serde_json::from_str(
            value["FilterCriteria"]["Filters"][0]["Pattern"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    let outbox_inserts = serde_json::json!({
        "eventName": ["INSERT"],
        "dynamodb": {"NewImage": {"entityType": {"S": ["OUTBOX"]}}}
    });
    assert_eq!(filter(mapping), outbox_inserts);
    assert_eq!(filter(pipe), outbox_inserts);
    let stream = &pipe["DynamoDBStreamParameters"];
    for retries in [
        &mapping["MaximumRetryAttempts"],
        &stream["MaximumRetryAttempts"],
    ] {
        assert!(
            retries.as_i64().is_some_and(|n| (0..=100).contains(&n)),
            "finite retries"
        );
    }
    for age in [
        &mapping["MaximumRecordAgeInSeconds"],
        &stream["MaximumRecordAgeInSeconds"],
    ] {
        assert!(
            age.as_i64().is_some_and(|s| (43_200..86_400).contains(&s)),
            "a record age that does not cut the retries short, under the stream's 24 h: {age:?}"
        );
    }
    assert_eq!(mapping["ParallelizationFactor"].as_i64(), Some(1));
    assert_eq!(mapping["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert_eq!(
        stream["OnPartialBatchItemFailure"].as_str(),
        Some("AUTOMATIC_BISECT")
    );
    assert_eq!(
        mapping["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
}

/// The logical id `value` refers to, if it is a `!Ref`.
fn reference(value: &Value) -> Option<&str> {
    tagged(value, "Ref")
}

/// The logical id of the resource whose attribute `value` is, if a `!GetAtt`.
fn attribute_of(value: &Value) -> Option<&str> {
    tagged(value, "GetAtt").and_then(|target| target.split('.').next())
}

/// The text of `value` when it is tagged `!tag`.
fn tagged<'v>(value: &'v Value, tag: &str) -> Option<&'v str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == serde_yaml::value::Tag::new(tag) => {
            tagged.value.as_str()
        }
        _ => None,
    }
}

/// The role `function` runs as: a role of the template's, by `!GetAtt`.
fn role_of<'t>(template: &'t Value, function: &str) -> &'t Value {
    let role = &resource(template, function)["Properties"]["Role"];
    let name = attribute_of(role).unwrap_or_else(|| panic!("{function} names its role: {role:?}"));
    let role = resource(template, name);
    assert_eq!(role["Type"].as_str(), Some("AWS::IAM::Role"), "{name}");
    role
}

/// Every policy statement of `value`, wherever it sits.
fn statements(value: &Value, found: &mut Vec<Value>) {
    match value {
        Value::Mapping(mapping) => {
            for (key, value) in mapping {
                if key.as_str() == Some("Statement") {
                    found.extend(value.as_sequence().cloned().unwrap_or_default());
                } else {
                    statements(value, found);
                }
            }
        }
        Value::Sequence(values) => values.iter().for_each(|v| statements(v, found)),
        _ => {}
    }
}

#[test]
fn no_policy_grants_a_wildcard_action() {
    let mut found = Vec::new();
    for template in [template(), custom_bus(), pipe()] {
        statements(&template, &mut found);
    }
    assert!(found.len() > 10, "the policies are found: {}", found.len());
    for statement in found
        .iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
    {
        let actions = match &statement["Action"] {
            Value::Sequence(actions) => actions.clone(),
            action => vec![action.clone()],
        };
        for action in actions {
            let action = action.as_str().unwrap_or_default();
            assert!(
                !action.contains('*'),
                "a wildcard action granted: {statement:?}"
            );
        }
    }
}

#[test]
fn every_queue_takes_the_largest_message_sqs_takes() {
    let template = template();
    let queues = resources_of_type(&template, "AWS::SQS::Queue");
    assert!(queues.len() > 2, "the relay's queues and each consumer's");
    for (name, queue) in queues {
        assert_eq!(
            queue["Properties"]["MaximumMessageSize"]
                .as_u64()
                .and_then(|bytes| usize::try_from(bytes).ok()),
            Some(outbox_sqs::MAX_MESSAGE_BYTES),
            "{name}: an event or a letter as large as the adapters send must fit"
        );
    }
}

#[test]
fn every_table_that_can_hold_the_outbox_has_the_time_index_the_archive_queries() {
    use outbox_dynamodb::layout::{OUTBOX_AT, OUTBOX_HOUR, OUTBOX_TIME_INDEX};
    let template = template();
    for table in ["Table", "OutboxTable"] {
        let properties = &resource(&template, table)["Properties"];
        let indexes = properties["GlobalSecondaryIndexes"].as_sequence().unwrap();
        let index = indexes
            .iter()
            .find(|i| i["IndexName"].as_str() == Some(OUTBOX_TIME_INDEX))
            .unwrap_or_else(|| panic!("{table} has no {OUTBOX_TIME_INDEX}"));
        let keys = key_schema(index);
        assert_eq!(
            keys,
            [(OUTBOX_HOUR, "HASH"), (OUTBOX_AT, "RANGE")],
            "{table}"
        );
        assert_eq!(
            index["Projection"]["ProjectionType"].as_str(),
            Some("ALL"),
            "{table}"
        );
        let defined: BTreeSet<&str> = properties["AttributeDefinitions"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|d| d["AttributeName"].as_str().unwrap())
            .collect();
        assert!(
            defined.contains(OUTBOX_HOUR) && defined.contains(OUTBOX_AT),
            "{table}"
        );
    }
}

#[test]
fn an_ordered_consumer_parks_before_its_queue_gives_up_and_a_park_is_alarmed() {
    let template = template();
    for reaction in service().consumers().to_vec() {
        let name = logical_id(reaction.name());
        let function = &resource(&template, &format!("{name}Function"))["Properties"];
        let role = role_of(&template, &format!("{name}Function"));
        let inbox_actions = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
            ["Action"]
            .as_sequence()
            .unwrap();
        let may = |action: &str| inbox_actions.iter().any(|a| a.as_str() == Some(action));
        assert!(may("dynamodb:UpdateItem"), "{name} counts its duplicates");
        let alarm = template["Resources"].get(format!("{name}ParkedAggregates"));
        if !reaction.subscription().is_ordered() {
            assert!(alarm.is_none(), "{name} never parks");
            continue;
        }
        assert!(may("dynamodb:DeleteItem"), "{name} releases held events");
        let parks_after: u64 = function["Environment"]["Variables"]["PARK_AFTER_ATTEMPTS"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let queue = &resource(&template, &format!("{name}Queue"))["Properties"];
        let gives_up = queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap();
        assert!(
            parks_after < gives_up,
            "{name}: parks after {parks_after} deliveries, its queue gives up after {gives_up}"
        );
        let alarm = &alarm.unwrap()["Properties"];
        assert_eq!(
            alarm["Namespace"].as_str(),
            Some(outbox_lambda::telemetry::NAMESPACE)
        );
        assert_eq!(
            alarm["MetricName"].as_str(),
            Some(outbox_lambda::telemetry::PARKED_AGGREGATES)
        );
        // A level, reported by the function's schedule: the alarm stays
        // raised while an aggregate stays parked, and a missed probe keeps it.
        assert_eq!(alarm["Statistic"].as_str(), Some("Maximum"));
        assert_eq!(alarm["TreatMissingData"].as_str(), Some("ignore"));
        let schedule = &function["Events"]["Parked"];
        assert_eq!(schedule["Type"].as_str(), Some("Schedule"));
        let rate = schedule["Properties"]["Schedule"].as_str().unwrap();
        let minutes: u64 = rate
            .strip_prefix("rate(")
            .and_then(|r| r.strip_suffix(" minutes)"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            minutes * 60 <= alarm["Period"].as_u64().unwrap(),
            "{name}: a probe in every period of its alarm"
        );
        let input = schedule["Properties"]["Input"].as_str().unwrap();
        assert!(
            matches!(
                serde_json::from_str(input).unwrap(),
                outbox_lambda::ConsumerEvent::Probe(_)
            ),
            "{name}: the schedule's input is a probe the function reads"
        );
        let mut found = Vec::new();
        statements(&role["Properties"], &mut found);
        let counts: Vec<_> = found
            .iter()
            .filter(|s| actions(s) == ["dynamodb:Query"])
            .collect();
        assert_eq!(counts.len(), 1, "{name} may query the index");
        assert_eq!(
            format!(
                "{:?}",
                counts[0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
            ),
            format!("{:?}", Value::Sequence(vec![Value::from(reaction.name())])),
            "{name} counts its own parked aggregates only"
        );
        assert!(format!("{:?}", counts[0]["Resource"]).contains(&format!(
            "/index/{}",
            outbox_dynamodb::layout::PARKED_BY_CONSUMER_INDEX
        )));
        assert_eq!(
            reference(&alarm["Dimensions"][0]["Value"]),
            Some(format!("{name}Function").as_str()),
            "{name}: the metric's Function dimension is its function, by reference"
        );
    }
}

/// Each consumer gets the grant and the variable of exactly the outside ports
/// its reaction calls: `s3:PutObject` under its own prefix with
/// `DOCUMENT_BUCKET`, SES sending from the stack's identity with
/// `SENDER_ADDRESS`; the bucket is encrypted, closed to the public and kept.
#[test]
fn a_consumer_is_granted_exactly_the_outside_ports_it_calls() {
    use outbox_application::OutsidePort;
    let template = template();
    let mut calling = 0;
    for reaction in service().consumers().to_vec() {
        let name = reaction.name();
        let function = resource(&template, &format!("{}Function", logical_id(name)));
        let variables = environment(function);
        let mut found = Vec::new();
        statements(
            &role_of(&template, &format!("{}Function", logical_id(name)))["Properties"],
            &mut found,
        );
        let granted = |action: &str| {
            found
                .iter()
                .filter(|s| format!("{:?}", s["Action"]).contains(action))
                .map(|s| format!("{:?}", s["Resource"]))
                .collect::<Vec<_>>()
        };
        let documents = reaction.calls().contains(&OutsidePort::Documents);
        let mail = reaction.calls().contains(&OutsidePort::Mail);
        calling += usize::from(documents || mail);
        assert_eq!(variables.contains("DOCUMENT_BUCKET"), documents, "{name}");
        assert_eq!(variables.contains("SENDER_ADDRESS"), mail, "{name}");
        let puts = granted("s3:PutObject");
        assert_eq!(!puts.is_empty(), documents, "{name}: {puts:?}");
        assert!(
            puts.iter()
                .all(|r| r.contains(&format!("DocumentBucket.Arn}}/{name}/*"))),
            "{name} writes under its own prefix only: {puts:?}"
        );
        let deletes = granted("dynamodb:DeleteItem");
        assert_eq!(
            !deletes.is_empty(),
            documents || mail || reaction.subscription().is_ordered(),
            "{name} may delete inbox items exactly when it releases claims or held events"
        );
        let sends = granted("ses:SendEmail");
        assert_eq!(!sends.is_empty(), mail, "{name}: {sends:?}");
        assert!(
            sends
                .iter()
                .all(|r| r.contains("identity/${SenderIdentity}")),
            "{name} sends from the identity only: {sends:?}"
        );
    }
    assert_eq!(calling, 2, "invoicing and customer notification call out");
    let bucket = resource(&template, "DocumentBucket");
    assert_eq!(bucket["DeletionPolicy"].as_str(), Some("Retain"));
    let properties = &bucket["Properties"];
    assert_eq!(
        properties["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"].as_bool(),
        Some(true)
    );
    assert!(!properties["BucketEncryption"].is_null());
    assert!(!template["Parameters"]["SenderIdentity"].is_null());
}

/// Closed by default, never a 503 for a committed command, and no consumer
/// backlog that can take the command API's concurrency.
#[test]
fn the_api_is_closed_by_default_answers_inside_its_limit_and_consumers_are_capped() {
    let template = template();
    assert_eq!(
        template["Parameters"]["ApiAuthorization"]["Default"].as_str(),
        Some("AWS_IAM")
    );
    let api = resource(&template, "CommandApiFunction");
    assert!(
        api["Properties"]["Timeout"]
            .as_i64()
            .is_some_and(|t| t < 30),
        "under the HTTP API's 30 s integration limit"
    );
    for reaction in service().consumers().to_vec() {
        let name = format!("{}Function", logical_id(reaction.name()));
        let queue = &resource(&template, &name)["Properties"]["Events"]["Queue"]["Properties"];
        assert!(
            queue["ScalingConfig"]["MaximumConcurrency"]
                .as_i64()
                .is_some_and(|n| (2..=10).contains(&n)),
            "{name} is capped"
        );
    }
}

/// The pipe logs its failures to a log group of its own, which its role may
/// write to and nothing else.
#[test]
fn the_pipe_logs_its_failures_where_its_role_may_write() {
    let template = pipe();
    let pipe = &resource(&template, "OutboxPipe")["Properties"];
    let logging = &pipe["LogConfiguration"];
    assert_eq!(logging["Level"].as_str(), Some("ERROR"));
    assert!(
        format!(
            "{:?}",
            logging["CloudwatchLogsLogDestination"]["LogGroupArn"]
        )
        .contains("OutboxPipeLogs"),
        "{logging:?}"
    );
    let group = resource(&template, "OutboxPipeLogs");
    assert!(group["Properties"]["RetentionInDays"].as_i64().is_some());
    let mut found = Vec::new();
    statements(&resource(&template, "PipeRole")["Properties"], &mut found);
    let writes: Vec<_> = found
        .iter()
        .filter(|s| format!("{:?}", s["Action"]).contains("logs:PutLogEvents"))
        .collect();
    assert_eq!(writes.len(), 1, "{found:?}");
    assert!(format!("{:?}", writes[0]["Resource"]).contains("OutboxPipeLogs"));
}

/// An alarm on the functions' own metrics names its function by reference:
/// two stacks in one account and region never share its series.
#[test]
fn every_custom_metric_alarm_names_its_function_by_reference() {
    let template = template();
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    let mut custom = 0;
    for (name, alarm) in alarms {
        let properties = &alarm["Properties"];
        if properties["Namespace"].as_str() != Some("Outbox") {
            continue;
        }
        custom += 1;
        let dimensions = properties["Dimensions"].as_sequence().unwrap();
        let function = dimensions
            .iter()
            .find(|d| d["Name"].as_str() == Some("Function"))
            .unwrap_or_else(|| panic!("{name} has a Function dimension"));
        let referenced = reference(&function["Value"]);
        assert!(
            referenced.is_some_and(|r| r.ends_with("Function")),
            "{name} names its function by reference: {:?}",
            function["Value"]
        );
    }
    assert!(
        custom >= 3,
        "the relay lag and every ordered consumer's park: {custom}"
    );
}

/// The actions `statement` allows, one by one.
fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::Sequence(actions) => actions
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        action => action.as_str().map(str::to_owned).into_iter().collect(),
    }
}

/// Every function runs as a role of its own with no managed policy (SAM's
/// would grant on every queue and log group of the account), logs to its own
/// log group, and takes traffic through its `live` alias by the stack's
/// DeploymentType, rolled back by CodeDeploy (as the stack's own role) when
/// one of its own alarms goes off.
#[test]
fn every_function_has_its_own_role_and_log_group_and_rolls_out_behind_its_alarms() {
    let template = template();
    assert_eq!(
        template["Globals"]["Function"]["AutoPublishAlias"].as_str(),
        Some("live")
    );
    let functions = resources_of_type(&template, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 2 + service().consumers().len());
    let mut roles = BTreeSet::new();
    for (name, function) in functions {
        let properties = &function["Properties"];
        let role = role_of(&template, name);
        assert!(
            roles.insert(attribute_of(&properties["Role"]).unwrap()),
            "{name} shares its role"
        );
        assert!(role["Properties"]["ManagedPolicyArns"].is_null(), "{name}");
        assert!(
            properties["Policies"].is_null(),
            "{name}: grants in its role only"
        );
        let logs = reference(&properties["LoggingConfig"]["LogGroup"]).unwrap();
        assert!(
            resource(&template, logs)["Properties"]["RetentionInDays"]
                .as_i64()
                .is_some(),
            "{name}: its log group expires"
        );
        let mut found = Vec::new();
        statements(&role["Properties"], &mut found);
        let writes: Vec<_> = found
            .iter()
            .filter(|s| actions(s).contains(&"logs:PutLogEvents".to_owned()))
            .collect();
        assert_eq!(writes.len(), 1, "{name}");
        assert_eq!(
            attribute_of(&writes[0]["Resource"]),
            Some(logs),
            "{name} writes its own log group only"
        );
        let deployment = &properties["DeploymentPreference"];
        assert_eq!(reference(&deployment["Type"]), Some("DeploymentType"));
        assert_eq!(attribute_of(&deployment["Role"]), Some("DeploymentRole"));
        let alarms = deployment["Alarms"].as_sequence().unwrap();
        assert!(!alarms.is_empty(), "{name} rolls back on an alarm");
        for alarm in alarms {
            let alarm = reference(alarm).unwrap();
            let watched = format!("{:?}", resource(&template, alarm)["Properties"]);
            assert!(
                watched.contains(&format!("\"{name}\"")) || watched.contains("\"HttpApi\""),
                "{name}: {alarm} watches it"
            );
        }
    }
    let deployer = resource(&template, "DeploymentRole");
    assert!(deployer["Properties"]["ManagedPolicyArns"].is_null());
    assert!(
        format!("{:?}", deployer["Properties"]["AssumeRolePolicyDocument"])
            .contains("codedeploy.amazonaws.com")
    );
    let relay = &resource(&template, "OutboxRelayFunction")["Properties"];
    assert_eq!(
        relay["DeploymentPreference"]["PassthroughCondition"].as_bool(),
        Some(true),
        "the relay's deployment group exists only with the relay"
    );
    for (user, value) in [
        (
            "OutboxRelayMapping",
            &resource(&template, "OutboxRelayMapping")["Properties"]["FunctionName"],
        ),
        (
            "HttpApiIntegration",
            &resource(&template, "HttpApiIntegration")["Properties"]["IntegrationUri"],
        ),
        (
            "HttpApiPermission",
            &resource(&template, "HttpApiPermission")["Properties"]["FunctionName"],
        ),
    ] {
        assert!(
            reference(value).is_some_and(|r| r.ends_with("Function.Alias")),
            "{user} invokes the alias: {value:?}"
        );
    }
}

/// Each consumer may touch only its own inbox items (the partition keys its
/// inbox writes), read only its own queue, and its subscriber (Custom Event
/// Bus) may send only to its own queues.
#[test]
fn each_consumer_reaches_its_own_queue_and_inbox_items_only() {
    let template = template();
    let custom_bus = custom_bus();
    let passed = nested(
        &template,
        "CustomBusStack",
        "CustomBus",
        "stacks/custom-bus.yaml",
    );
    for reaction in service().consumers().to_vec() {
        let name = logical_id(reaction.name());
        let mut found = Vec::new();
        statements(
            &role_of(&template, &format!("{name}Function"))["Properties"],
            &mut found,
        );
        let inbox = found
            .iter()
            .find(|s| attribute_of(&s["Resource"]) == Some("InboxTable"))
            .unwrap();
        let keys: Vec<&str> = inbox["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            outbox_dynamodb::leading_keys(reaction.name()),
            "{name}"
        );
        let receives: Vec<_> = found
            .iter()
            .filter(|s| actions(s).contains(&"sqs:ReceiveMessage".to_owned()))
            .collect();
        assert_eq!(receives.len(), 1, "{name}");
        assert_eq!(
            attribute_of(&receives[0]["Resource"]),
            Some(format!("{name}Queue").as_str())
        );
        let mut delivers = Vec::new();
        let subscriber_role = resource(&custom_bus, &format!("{name}SubscriberRole"));
        statements(&subscriber_role["Properties"], &mut delivers);
        let targets: BTreeSet<&str> = delivers
            .iter()
            .filter(|s| actions(s).contains(&"sqs:SendMessage".to_owned()))
            .flat_map(|s| s["Resource"].as_sequence().unwrap())
            .filter_map(reference)
            .collect();
        let queues = [format!("{name}Queue"), format!("{name}DeadLetterQueue")];
        assert_eq!(
            targets,
            queues
                .iter()
                .map(|q| format!("{q}Arn"))
                .collect::<BTreeSet<_>>()
                .iter()
                .map(String::as_str)
                .collect(),
            "{name}'s subscriber delivers to its queues only"
        );
        for queue in &queues {
            assert_eq!(
                attribute_of(&passed[format!("{queue}Arn").as_str()]),
                Some(queue.as_str()),
                "the stack passes {queue} as {queue}Arn"
            );
        }
        let subscriber = &resource(&custom_bus, &format!("{name}Subscriber"))["Properties"];
        assert_eq!(
            attribute_of(&subscriber["InvokeConfiguration"]["RoleArn"]),
            Some(format!("{name}SubscriberRole").as_str())
        );
    }
}

/// Letters outlive a replacement of their queue (changing EventBusKind turns
/// an ordered consumer's queues FIFO) and the stack itself.
#[test]
fn a_consumers_letters_survive_a_replacement_of_its_queues() {
    let template = template();
    for reaction in service().consumers().to_vec() {
        let name = logical_id(reaction.name());
        let letters = resource(&template, &format!("{name}DeadLetterQueue"));
        assert_eq!(letters["DeletionPolicy"].as_str(), Some("Retain"), "{name}");
        assert_eq!(
            letters["UpdateReplacePolicy"].as_str(),
            Some("Retain"),
            "{name}"
        );
        let queue = resource(&template, &format!("{name}Queue"));
        assert_eq!(
            queue["UpdateReplacePolicy"].as_str(),
            Some("Retain"),
            "{name}"
        );
    }
}

/// Every alarm notifies the stack's target (a topic given, or the stack's own
/// mailing the address given; the template refuses neither), carries no fixed
/// name (CloudFormation names it after the stack), and each consumer is
/// watched for errors, retries handed back, its oldest message and its letters.
#[test]
fn every_alarm_reaches_someone_and_each_consumer_is_watched() {
    let template = template();
    let rule = format!("{:?}", template["Rules"]["AlarmsNotifySomeone"]);
    assert!(
        rule.contains("AlarmEmail") && rule.contains("AlarmTopicArn"),
        "{rule}"
    );
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    for (name, alarm) in &alarms {
        let properties = &alarm["Properties"];
        assert!(properties["AlarmName"].is_null(), "{name}");
        let actions = format!("{:?}", properties["AlarmActions"]);
        assert!(
            actions.contains("HasAlarmTopic")
                && actions.contains("AlarmTopicArn")
                && actions.contains("\"AlarmTopic\""),
            "{name} notifies the stack's target: {actions}"
        );
    }
    let named: BTreeSet<&str> = alarms.iter().map(|(name, _)| *name).collect();
    for alarm in [
        "CommandApi5xx",
        "CommandApiLatency",
        "CommandApiErrors",
        "CommandApiThrottles",
        "RelayErrors",
        "TableThrottles",
        "InboxTableThrottles",
        "TableSystemErrors",
        "InboxTableSystemErrors",
    ] {
        assert!(named.contains(alarm), "{alarm}");
    }
    // The pipe's alarm, in its stack, notifies the target the stack passes.
    let passed = nested(&template, "PipeStack", "PipeRelay", "stacks/pipe.yaml");
    let target = format!("{:?}", passed["AlarmTopicArn"]);
    assert!(
        target.contains("HasAlarmTopic") && target.contains("\"AlarmTopic\""),
        "{target}"
    );
    let pipe = pipe();
    let failures = &resource(&pipe, "PipeFailures")["Properties"];
    assert_eq!(
        reference(&failures["AlarmActions"][0]),
        Some("AlarmTopicArn")
    );
    let watched = format!("{:?}", failures["Metrics"]);
    for metric in [
        "ExecutionFailed",
        "ExecutionPartiallyFailed",
        "TargetStageFailed",
    ] {
        assert!(watched.contains(metric), "the pipe's {metric}");
    }
    for reaction in service().consumers().to_vec() {
        let name = logical_id(reaction.name());
        for alarm in ["Errors", "Retries", "QueueAge", "DeadLetterQueueDepth"] {
            assert!(
                named.contains(format!("{name}{alarm}").as_str()),
                "{name}{alarm}"
            );
        }
        let retries = &resource(&template, &format!("{name}Retries"))["Properties"];
        assert_eq!(
            retries["MetricName"].as_str(),
            Some(outbox_lambda::telemetry::CONSUMER_RETRIES)
        );
    }
}

/// The inbox table's index of parked sequences is the one the DynamoDB inbox
/// counts by: same name, same keys.
#[test]
fn the_inbox_table_has_the_index_the_parked_count_queries() {
    use outbox_dynamodb::layout::{PARKED_BY, PARKED_BY_CONSUMER_INDEX, PARKED_SINCE};
    let template = template();
    let inbox = &resource(&template, "InboxTable")["Properties"];
    let index = &inbox["GlobalSecondaryIndexes"][0];
    assert_eq!(index["IndexName"].as_str(), Some(PARKED_BY_CONSUMER_INDEX));
    assert_eq!(
        key_schema(index),
        [(PARKED_BY, "HASH"), (PARKED_SINCE, "RANGE")]
    );
    let defined = format!("{:?}", inbox["AttributeDefinitions"]);
    assert!(defined.contains(PARKED_BY) && defined.contains(PARKED_SINCE));
}

/// An index's key schema: (attribute, key type) in order.
fn key_schema(index: &Value) -> Vec<(&str, &str)> {
    index["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------ dashboard

/// The region the dashboard's body is resolved in.
const REGION: &str = "eu-west-1";

/// A deployed variant of a template: its parameters' values, the conditions
/// they make true, and the resources that exist under them. Resolves the
/// intrinsic functions the dashboard uses to text, each reference to a
/// placeholder naming what it refers to (`Table`, `DeadLetterQueue.QueueName`),
/// and refuses a reference to a resource the variant does not create.
struct Stack {
    template: Value,
    parameters: std::collections::BTreeMap<String, String>,
    /// What the variant is, for the failures' messages.
    variant: String,
}

impl Stack {
    /// `template` deployed with `overrides` over its parameters' defaults.
    fn new(template: Value, overrides: &[(&str, &str)]) -> Self {
        let mut parameters: std::collections::BTreeMap<String, String> = template["Parameters"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(name, parameter)| {
                let name = name.as_str().unwrap().to_owned();
                let value = match &parameter["Default"] {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    _ => format!("<{name}>"),
                };
                (name, value)
            })
            .collect();
        for (name, value) in overrides {
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        let variant = format!("{overrides:?}");
        Self {
            template,
            parameters,
            variant,
        }
    }

    /// Whether the template's condition `name` holds.
    fn condition(&self, name: &str) -> bool {
        let condition = self.template["Conditions"]
            .get(name)
            .unwrap_or_else(|| panic!("no condition {name}"));
        self.holds(condition)
    }

    /// Whether `condition` (`Fn::Equals`, `Not`, `And`, `Or`, `Condition`) holds.
    fn holds(&self, condition: &Value) -> bool {
        let (function, argument) = intrinsic(condition).unwrap();
        let arguments = || argument.as_sequence().unwrap().as_slice();
        match function.as_str() {
            "Equals" => {
                let [left, right] = arguments() else {
                    panic!("Equals takes two: {condition:?}")
                };
                self.resolve(left) == self.resolve(right)
            }
            "Not" => !self.holds(&arguments()[0]),
            "And" => arguments().iter().all(|c| self.holds(c)),
            "Or" => arguments().iter().any(|c| self.holds(c)),
            "Condition" => self.condition(argument.as_str().unwrap()),
            other => panic!("the resolver knows no condition function {other}"),
        }
    }

    /// Whether the resource `name` exists in this variant.
    fn exists(&self, name: &str) -> bool {
        self.template["Resources"]
            .get(name)
            .is_some_and(|resource| match resource["Condition"].as_str() {
                Some(condition) => self.condition(condition),
                None => true,
            })
    }

    /// The text `value` resolves to.
    fn resolve(&self, value: &Value) -> String {
        let Some((function, argument)) = intrinsic(value) else {
            return value
                .as_str()
                .unwrap_or_else(|| panic!("not text: {value:?}"))
                .to_owned();
        };
        match function.as_str() {
            "Sub" => self.substitute(argument.as_str().unwrap()),
            "Join" => {
                let [separator, parts] = argument.as_sequence().unwrap().as_slice() else {
                    panic!("Join takes two: {value:?}")
                };
                let parts: Vec<String> = parts
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|part| self.resolve(part))
                    .collect();
                parts.join(separator.as_str().unwrap())
            }
            "If" => {
                let [condition, then, otherwise] = argument.as_sequence().unwrap().as_slice()
                else {
                    panic!("If takes three: {value:?}")
                };
                if self.condition(condition.as_str().unwrap()) {
                    self.resolve(then)
                } else {
                    self.resolve(otherwise)
                }
            }
            "Ref" | "GetAtt" => self.reference(argument.as_str().unwrap()),
            other => panic!("the resolver knows no function {other}"),
        }
    }

    /// `text` with each `${…}` replaced by what it names.
    fn substitute(&self, text: &str) -> String {
        let mut resolved = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            resolved.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            if let Some(literal) = after.strip_prefix('!') {
                resolved.push_str("${");
                rest = literal;
                continue;
            }
            let end = after
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {text}"));
            resolved.push_str(&self.reference(&after[..end]));
            rest = &after[end + 1..];
        }
        resolved.push_str(rest);
        resolved
    }

    /// What `name` (`Resource`, `Resource.Attribute`, a parameter or a
    /// pseudo parameter) stands for: a parameter's value, else a placeholder
    /// naming it; a nested stack's output is that stack's value.
    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::Region" => return REGION.to_owned(),
            "AWS::StackName" => return "outbox-stack".to_owned(),
            "AWS::AccountId" => return "123456789012".to_owned(),
            "AWS::Partition" => return "aws".to_owned(),
            _ => {}
        }
        if let Some(value) = self.parameters.get(name) {
            return value.clone();
        }
        let (resource, attribute) = name.split_once('.').unwrap_or((name, ""));
        assert!(
            self.exists(resource),
            "{name} names a resource that {} does not create",
            self.variant
        );
        if let Some(output) = attribute.strip_prefix("Outputs.") {
            let path = resource_at(&self.template, resource)["Properties"]["TemplateURL"]
                .as_str()
                .unwrap()
                .to_owned();
            let nested = Stack::new(serde_yaml::from_str(&committed(&path)).unwrap(), &[]);
            return nested.resolve(&nested.template["Outputs"][output]["Value"]);
        }
        name.to_owned()
    }

    /// The nested stacks this variant creates, each as a stack of its own.
    fn nested(&self) -> Vec<Stack> {
        resources_of_type(&self.template, "AWS::CloudFormation::Stack")
            .into_iter()
            .filter(|(name, _)| self.exists(name))
            .map(|(_, stack)| {
                let path = stack["Properties"]["TemplateURL"].as_str().unwrap();
                Stack::new(serde_yaml::from_str(&committed(path)).unwrap(), &[])
            })
            .collect()
    }

    /// The dashboard's body, parsed: it must be JSON.
    fn dashboard(&self) -> serde_json::Value {
        let body =
            self.resolve(&resource_at(&self.template, "Dashboard")["Properties"]["DashboardBody"]);
        serde_json::from_str(&body).unwrap_or_else(|error| {
            panic!("{}: the body is not JSON ({error}):\n{body}", self.variant)
        })
    }

    /// This variant's alarms, its nested stacks' included, each with the
    /// metrics it watches.
    fn alarms(&self) -> Vec<(String, Vec<Metric>)> {
        let mut alarms: Vec<(String, Vec<Metric>)> =
            resources_of_type(&self.template, "AWS::CloudWatch::Alarm")
                .into_iter()
                .filter(|(name, _)| self.exists(name))
                .map(|(name, alarm)| (name.to_owned(), self.watched(&alarm["Properties"])))
                .collect();
        for nested in self.nested() {
            alarms.extend(nested.alarms());
        }
        alarms
    }

    /// The metrics an alarm's `properties` watch: its one metric, or each
    /// metric of its math.
    fn watched(&self, properties: &Value) -> Vec<Metric> {
        let metric = |metric: &Value| Metric {
            namespace: metric["Namespace"].as_str().unwrap().to_owned(),
            name: metric["MetricName"].as_str().unwrap().to_owned(),
            dimensions: metric["Dimensions"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d["Name"].as_str().unwrap().to_owned(),
                        self.resolve(&d["Value"]),
                    )
                })
                .collect(),
        };
        match properties["Metrics"].as_sequence() {
            Some(queries) => queries
                .iter()
                .filter(|query| !query["MetricStat"].is_null())
                .map(|query| metric(&query["MetricStat"]["Metric"]))
                .collect(),
            None => vec![metric(properties)],
        }
    }
}

/// The resource `name` of `template`.
fn resource_at<'t>(template: &'t Value, name: &str) -> &'t Value {
    template["Resources"]
        .get(name)
        .unwrap_or_else(|| panic!("no resource {name}"))
}

/// An intrinsic function's name (`Sub`, `If`, …) and its argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        )),
        _ => None,
    }
}

/// A CloudWatch metric: namespace, name, dimensions.
#[derive(Debug, PartialEq, Eq)]
struct Metric {
    namespace: String,
    name: String,
    dimensions: std::collections::BTreeMap<String, String>,
}

impl Metric {
    fn new(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            dimensions: dimensions
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }
}

/// The metrics a dashboard widget draws (its expressions left out): each
/// `[namespace, name, dimension, value, …, {options}]`.
fn drawn(widget: &serde_json::Value) -> Vec<Metric> {
    let rows = widget["properties"]["metrics"]
        .as_array()
        .into_iter()
        .flatten();
    rows.filter_map(|row| {
        let row = row.as_array().unwrap();
        let texts: Vec<&str> = row.iter().map_while(serde_json::Value::as_str).collect();
        let [namespace, name, dimensions @ ..] = texts.as_slice() else {
            return None;
        };
        assert!(
            dimensions.len() % 2 == 0,
            "dimension without value: {row:?}"
        );
        let pairs: Vec<(&str, &str)> = dimensions.chunks(2).map(|d| (d[0], d[1])).collect();
        Some(Metric::new(namespace, name, &pairs))
    })
    .collect()
}

/// The stack in each variant it deploys in: relay mode, outbox table of its
/// own or not, classic or Custom Event Bus (the template refuses a pipe on a
/// Custom Event Bus).
fn variants() -> Vec<Stack> {
    let mut stacks = Vec::new();
    for relay in ["Lambda", "Pipe"] {
        for separate in ["false", "true"] {
            for bus in ["Classic", "Custom"] {
                if relay == "Pipe" && bus == "Custom" {
                    continue;
                }
                stacks.push(Stack::new(
                    template(),
                    &[
                        ("RelayMode", relay),
                        ("SeparateOutboxTable", separate),
                        ("EventBusKind", bus),
                    ],
                ));
            }
        }
    }
    stacks
}

/// The dashboard is JSON in every variant once its `Fn::Sub`, `Fn::Join` and
/// `Fn::If` are resolved, names only resources the variant creates, draws
/// every graph in the stack's region, and shows at most one alarm a graph
/// (CloudWatch's limit); the stack's output is its console address.
#[test]
fn the_dashboard_is_json_of_the_stacks_own_resources_in_every_variant() {
    let stacks = variants();
    assert_eq!(stacks.len(), 6);
    for stack in &stacks {
        let body = stack.dashboard();
        let widgets = body["widgets"].as_array().unwrap();
        assert!(
            widgets.len() > 20,
            "{}: {} widgets",
            stack.variant,
            widgets.len()
        );
        for widget in widgets.iter().filter(|w| w["type"] == "metric") {
            let properties = &widget["properties"];
            assert_eq!(properties["region"], REGION, "{widget}");
            let alarms = properties["annotations"]["alarms"].as_array();
            assert!(
                alarms.is_none_or(|a| a.len() == 1),
                "one alarm a graph: {widget}"
            );
        }
        let url = stack.resolve(&stack.template["Outputs"]["DashboardUrl"]["Value"]);
        assert_eq!(
            url,
            format!("https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#dashboards:name=Dashboard")
        );
    }
}

/// Every alarm of the stack (the pipe's in its nested stack included) is on
/// a graph that draws each metric it watches, in every variant.
#[test]
fn every_alarm_is_on_a_dashboard_graph_of_its_own_metrics() {
    for stack in variants() {
        let body = stack.dashboard();
        let widgets = body["widgets"].as_array().unwrap();
        let alarms = stack.alarms();
        assert!(
            alarms.len() > 30,
            "{}: {} alarms",
            stack.variant,
            alarms.len()
        );
        for (alarm, watched) in &alarms {
            let arn = format!("{alarm}.Arn");
            let graph = widgets
                .iter()
                .find(|w| w["properties"]["annotations"]["alarms"][0] == arn.as_str())
                .unwrap_or_else(|| panic!("{}: no graph shows {alarm}", stack.variant));
            let drawn = drawn(graph);
            for metric in watched {
                assert!(
                    drawn.contains(metric),
                    "{}: the graph of {alarm} does not draw {metric:?}",
                    stack.variant
                );
            }
        }
    }
}

/// Every consumer's function has its errors and its duration on the
/// dashboard, in every variant.
#[test]
fn every_consumer_has_its_errors_and_duration_on_the_dashboard() {
    for stack in variants() {
        let body = stack.dashboard();
        let drawn: Vec<Metric> = body["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(drawn)
            .collect();
        for reaction in service().consumers().to_vec() {
            let function = format!("{}Function", logical_id(reaction.name()));
            for metric in ["Errors", "Duration"] {
                let metric = Metric::new("AWS/Lambda", metric, &[("FunctionName", &function)]);
                assert!(drawn.contains(&metric), "{}: {metric:?}", stack.variant);
            }
        }
    }
}

/// Every terminal queue (one without a redrive policy: the dead-letter
/// queues and the stream failure queue) has its depth on the dashboard.
#[test]
fn every_dead_letter_queue_has_its_depth_on_the_dashboard() {
    for stack in variants() {
        let body = stack.dashboard();
        let drawn: Vec<Metric> = body["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(drawn)
            .collect();
        let terminal: Vec<&str> = resources_of_type(&stack.template, "AWS::SQS::Queue")
            .into_iter()
            .filter(|(name, queue)| {
                stack.exists(name) && queue["Properties"]["RedrivePolicy"].is_null()
            })
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            terminal.len(),
            2 + service().consumers().len(),
            "{terminal:?}"
        );
        for queue in terminal {
            let name = format!("{queue}.QueueName");
            let depth = Metric::new(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                &[("QueueName", &name)],
            );
            assert!(drawn.contains(&depth), "{}: {queue}'s depth", stack.variant);
        }
    }
}
