//! Configuration of the Lambda functions, from environment variables.
//!
//! | variable | used by | meaning |
//! | --- | --- | --- |
//! | `TABLE_NAME` | command API, consumers | the aggregate table; a consumer's inbox table |
//! | `OUTBOX_TABLE_NAME` | command API | a separate outbox table (default: `TABLE_NAME`) |
//! | `EVENT_BUS_NAME` | relay | a classic EventBridge bus (no order promised) |
//! | `EVENT_BUS_ARN` | relay | a Custom Event Bus instead (order per aggregate, repeats dropped) |
//! | `RELAY_CALLS_IN_FLIGHT` | relay | `PutEvents` calls at once, 1–16 (default 4) |
//! | `DEAD_LETTER_QUEUE_URL` | relay, consumers | the SQS dead-letter queue |
//! | `CONSUMER_NAME` | consumers | which declared consumer this function is, e.g. `invoicing` |
//! | `PARK_AFTER_ATTEMPTS` | ordered consumers | deliveries of an event ahead of a gap before its aggregate parks, 1–1000 (default 5) |
//! | `PARK_AFTER_SECONDS` | ordered consumers | or seconds since its first delivery, 1–1209600 (default 900) |
//! | `DOCUMENT_BUCKET` | consumers that write documents | the S3 bucket, under the consumer's name |
//! | `SENDER_ADDRESS` | consumers that send email | the SES From address |
//!
//! Each aggregate type's event source comes from the service declaration, never
//! from a variable: `EVENT_SOURCE`, which once put every event under one source
//! that no rule matched, is refused. `AWS_REGION`, `AWS_ENDPOINT_URL` and
//! credentials are read by [`super::sdk`].

use outbox_application::{EventSources, ParkingPolicy, ServiceError, DEFAULT_CALLS_IN_FLIGHT};
use outbox_domain::EmailAddress;
use outbox_dynamodb::TableLayout;

use crate::outside::{DOCUMENT_BUCKET, SENDER_ADDRESS};

/// Why the configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set or empty.
    #[error("{0} is not set; the function cannot start without it")]
    Missing(&'static str),
    /// A variable's value cannot be right.
    #[error("{name} is invalid ({value:?}): {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value, cut to 100 characters.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The service declaration cannot run, or names no such consumer.
    #[error("the service declaration: {0}")]
    Service(#[from] ServiceError),
}

/// Reads variables through `lookup`, so tests need not touch the process environment.
struct Vars<L: Fn(&str) -> Option<String>>(L);

impl<L: Fn(&str) -> Option<String>> Vars<L> {
    fn optional(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.0)(name).map(|v| v.trim().to_owned()) {
            None => Ok(None),
            Some(value) if value.is_empty() => Ok(None),
            Some(value) if value.chars().any(char::is_whitespace) || value.len() > 1024 => {
                Err(ConfigError::Invalid {
                    name,
                    value: value.chars().take(100).collect(),
                    reason: "it must be one word of at most 1024 characters",
                })
            }
            Some(value) => Ok(Some(value)),
        }
    }

    fn number(
        &self,
        name: &'static str,
        range: std::ops::RangeInclusive<usize>,
        reason: &'static str,
    ) -> Result<Option<usize>, ConfigError> {
        let Some(raw) = self.optional(name)? else {
            return Ok(None);
        };
        match raw.parse::<usize>() {
            Ok(value) if range.contains(&value) => Ok(Some(value)),
            _ => Err(ConfigError::Invalid {
                name,
                value: raw.chars().take(100).collect(),
                reason,
            }),
        }
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name)?.ok_or(ConfigError::Missing(name))
    }

    fn queue_url(&self, name: &'static str) -> Result<String, ConfigError> {
        let url = self.required(name)?;
        if url.starts_with("https://") || url.starts_with("http://") {
            Ok(url)
        } else {
            Err(ConfigError::Invalid {
                name,
                value: url.chars().take(100).collect(),
                reason: "it must be the queue's URL, e.g. https://sqs.<region>.amazonaws.com/<account>/<name>",
            })
        }
    }
}

/// The command API's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandApiConfig {
    /// Where aggregates and their outbox live.
    pub layout: TableLayout,
}

impl CommandApiConfig {
    /// From the process environment.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_env(sources: EventSources) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), sources)
    }

    /// From `lookup`, outbox items carrying `sources` (the declaration's).
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        sources: EventSources,
    ) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        let mut layout = TableLayout::single_table(vars.required(TABLE_NAME)?, sources);
        if let Some(outbox) = vars.optional(OUTBOX_TABLE_NAME)? {
            if outbox != layout.table {
                layout = layout.with_outbox_table(outbox);
            }
        }
        Ok(Self { layout })
    }
}

/// The environment variables a function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variables {
    /// Those it cannot start without.
    pub required: &'static [&'static str],
    /// Those it reads when given.
    pub optional: &'static [&'static str],
}

/// The main table (state, outbox, idempotency records) or a consumer's inbox table.
pub const TABLE_NAME: &str = "TABLE_NAME";
/// A separate outbox table.
pub const OUTBOX_TABLE_NAME: &str = "OUTBOX_TABLE_NAME";
/// The classic bus the relay publishes to.
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
/// The Custom Event Bus the relay publishes to instead.
pub const EVENT_BUS_ARN: &str = "EVENT_BUS_ARN";
/// How many `PutEvents` calls the relay keeps in flight.
pub const RELAY_CALLS_IN_FLIGHT: &str = "RELAY_CALLS_IN_FLIGHT";
/// Refused: sources come from the service declaration.
pub const EVENT_SOURCE: &str = "EVENT_SOURCE";
/// Which declared consumer a consumer function is.
pub const CONSUMER_NAME: &str = "CONSUMER_NAME";
/// The dead-letter queue's URL.
pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";
/// Deliveries of an event ahead of a gap before its aggregate parks.
pub const PARK_AFTER_ATTEMPTS: &str = "PARK_AFTER_ATTEMPTS";
/// Seconds since an event ahead of a gap was first delivered before its aggregate parks.
pub const PARK_AFTER_SECONDS: &str = "PARK_AFTER_SECONDS";

impl CommandApiConfig {
    /// What `command-api` reads.
    pub const VARIABLES: Variables = Variables {
        required: &[TABLE_NAME],
        optional: &[OUTBOX_TABLE_NAME],
    };
}

impl RelayConfig {
    /// What `outbox-relay` reads (one of [`EVENT_BUS_NAME`] and
    /// [`EVENT_BUS_ARN`] is required).
    pub const VARIABLES: Variables = Variables {
        required: &[DEAD_LETTER_QUEUE_URL],
        optional: &[EVENT_BUS_NAME, EVENT_BUS_ARN, RELAY_CALLS_IN_FLIGHT],
    };
}

impl ConsumerConfig {
    /// What every consumer reads.
    pub const VARIABLES: Variables = Variables {
        required: &[CONSUMER_NAME, TABLE_NAME, DEAD_LETTER_QUEUE_URL],
        optional: &[
            PARK_AFTER_ATTEMPTS,
            PARK_AFTER_SECONDS,
            DOCUMENT_BUCKET,
            SENDER_ADDRESS,
        ],
    };
}

/// The bus the relay publishes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusTarget {
    /// A classic EventBridge bus, by name: no order promised.
    Classic {
        /// The bus's name.
        name: String,
    },
    /// A Custom Event Bus, by ARN: order per aggregate, repeats dropped.
    Custom {
        /// The bus's ARN.
        arn: String,
    },
}

/// The outbox relay's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The bus events are published to.
    pub bus: BusTarget,
    /// How many publish calls the relay keeps in flight.
    pub calls_in_flight: usize,
    /// Where poison records and refused events go.
    pub dead_letter_queue_url: String,
}

impl RelayConfig {
    /// From the process environment.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup`.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        if let Some(source) = vars.optional(EVENT_SOURCE)? {
            return Err(ConfigError::Invalid {
                name: EVENT_SOURCE,
                value: source.chars().take(100).collect(),
                reason: "it is not read: each aggregate type's source comes from the service declaration, and one source for all would match no rule",
            });
        }
        let bus = bus_target(
            vars.optional(EVENT_BUS_NAME)?,
            vars.optional(EVENT_BUS_ARN)?,
        )?
        .ok_or(ConfigError::Missing("EVENT_BUS_NAME or EVENT_BUS_ARN"))?;
        Ok(Self {
            bus,
            calls_in_flight: vars
                .number(
                    RELAY_CALLS_IN_FLIGHT,
                    1..=16,
                    "it must be a whole number from 1 to 16",
                )?
                .unwrap_or(DEFAULT_CALLS_IN_FLIGHT),
            dead_letter_queue_url: vars.queue_url(DEAD_LETTER_QUEUE_URL)?,
        })
    }
}

/// The bus named by `EVENT_BUS_NAME` (`name`) or `EVENT_BUS_ARN` (`arn`); `None` when neither is set.
///
/// # Errors
/// [`ConfigError::Invalid`] when both are set or the ARN is not a Custom Event Bus's.
pub fn bus_target(
    name: Option<String>,
    arn: Option<String>,
) -> Result<Option<BusTarget>, ConfigError> {
    match (name, arn) {
        (Some(name), None) => Ok(Some(BusTarget::Classic { name })),
        (None, Some(arn)) if arn.starts_with("arn:") && arn.contains(":event-busv2/") => {
            Ok(Some(BusTarget::Custom { arn }))
        }
        (None, Some(arn)) => Err(ConfigError::Invalid {
            name: EVENT_BUS_ARN,
            value: arn.chars().take(100).collect(),
            reason: "it must be a Custom Event Bus ARN, arn:aws:events:<region>:<account>:event-busv2/<name>/<id>",
        }),
        (Some(name), Some(_)) => Err(ConfigError::Invalid {
            name: EVENT_BUS_ARN,
            value: name.chars().take(100).collect(),
            reason: "set EVENT_BUS_NAME (a classic bus) or EVENT_BUS_ARN (a Custom Event Bus), not both",
        }),
        (None, None) => Ok(None),
    }
}

/// A consumer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Which declared consumer it is.
    pub consumer_name: String,
    /// The table of its inbox marks and effects.
    pub table_name: String,
    /// Where undecodable deliveries go.
    pub dead_letter_queue_url: String,
    /// When an ordered consumer parks an aggregate.
    pub parking: ParkingPolicy,
    /// The S3 bucket of its documents, if it writes any.
    pub document_bucket: Option<String>,
    /// The From address of its email, if it sends any.
    pub sender_address: Option<EmailAddress>,
}

impl ConsumerConfig {
    /// From the process environment.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup`.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        let default = ParkingPolicy::default();
        let attempts = vars.number(
            PARK_AFTER_ATTEMPTS,
            1..=1000,
            "it must be a whole number from 1 to 1000",
        )?;
        let seconds = vars.number(
            PARK_AFTER_SECONDS,
            1..=1_209_600,
            "it must be a whole number of seconds from 1 to 1209600 (14 days)",
        )?;
        let sender_address = vars
            .optional(SENDER_ADDRESS)?
            .map(|raw| {
                EmailAddress::parse(SENDER_ADDRESS, &raw).map_err(|error| ConfigError::Invalid {
                    name: SENDER_ADDRESS,
                    value: raw.chars().take(100).collect(),
                    reason: error.reason,
                })
            })
            .transpose()?;
        Ok(Self {
            document_bucket: vars.optional(DOCUMENT_BUCKET)?,
            sender_address,
            consumer_name: vars.required(CONSUMER_NAME)?,
            table_name: vars.required(TABLE_NAME)?,
            dead_letter_queue_url: vars.queue_url(DEAD_LETTER_QUEUE_URL)?,
            parking: ParkingPolicy {
                max_attempts: attempts
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(default.max_attempts),
                max_wait: seconds
                    .map(|s| std::time::Duration::from_secs(s as u64))
                    .unwrap_or(default.max_wait),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sources() -> EventSources {
        EventSources::new([("Order", "orders.outbox")])
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn a_complete_environment_configures_every_function() {
        let api = CommandApiConfig::from_lookup(
            env(&[("TABLE_NAME", "workshop"), ("OUTBOX_TABLE_NAME", "outbox")]),
            sources(),
        )
        .unwrap();
        assert_eq!(api.layout.outbox_table(), "outbox");
        assert_eq!(api.layout.sources.source_of("Order"), "orders.outbox");
        let same =
            CommandApiConfig::from_lookup(env(&[("TABLE_NAME", "workshop")]), sources()).unwrap();
        assert_eq!(same.layout.outbox_table(), "workshop");
        let relay = RelayConfig::from_lookup(env(&[
            ("EVENT_BUS_NAME", "outbox-bus"),
            (
                "DEAD_LETTER_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/dlq",
            ),
        ]))
        .unwrap();
        assert_eq!(
            relay.bus,
            BusTarget::Classic {
                name: "outbox-bus".into()
            }
        );
        assert_eq!(relay.calls_in_flight, DEFAULT_CALLS_IN_FLIGHT);
        let arn =
            "arn:aws:events:eu-west-1:123456789012:event-busv2/outbox/abcdefghijklmnopqrstuvwxy";
        let custom = RelayConfig::from_lookup(env(&[
            ("EVENT_BUS_ARN", arn),
            ("RELAY_CALLS_IN_FLIGHT", "8"),
            (
                "DEAD_LETTER_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/dlq",
            ),
        ]))
        .unwrap();
        assert_eq!(custom.bus, BusTarget::Custom { arn: arn.into() });
        assert_eq!(custom.calls_in_flight, 8);
        let consumer = ConsumerConfig::from_lookup(env(&[
            ("CONSUMER_NAME", "invoicing"),
            ("TABLE_NAME", "invoicing"),
            ("DEAD_LETTER_QUEUE_URL", "http://127.0.0.1:5000/1/dlq"),
        ]))
        .unwrap();
        assert_eq!(consumer.table_name, "invoicing");
        assert_eq!(consumer.consumer_name, "invoicing");
        assert_eq!(consumer.parking, ParkingPolicy::default());
        let ordered = ConsumerConfig::from_lookup(env(&[
            ("CONSUMER_NAME", "order-tracking"),
            ("TABLE_NAME", "tracking"),
            ("DEAD_LETTER_QUEUE_URL", "http://127.0.0.1:5000/1/dlq"),
            ("PARK_AFTER_ATTEMPTS", "8"),
            ("PARK_AFTER_SECONDS", "1800"),
        ]))
        .unwrap();
        assert_eq!(
            ordered.parking,
            ParkingPolicy {
                max_attempts: 8,
                max_wait: std::time::Duration::from_secs(1800),
            }
        );
    }

    #[test]
    fn missing_or_invalid_settings_are_named() {
        assert_eq!(
            CommandApiConfig::from_lookup(env(&[("TABLE_NAME", "  ")]), sources()),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
        assert_eq!(
            RelayConfig::from_lookup(env(&[("DEAD_LETTER_QUEUE_URL", "https://q")])),
            Err(ConfigError::Missing("EVENT_BUS_NAME or EVENT_BUS_ARN"))
        );
        let dlq = ("DEAD_LETTER_QUEUE_URL", "https://q");
        for (vars, invalid) in [
            (
                vec![
                    ("EVENT_BUS_NAME", "b"),
                    ("EVENT_BUS_ARN", "arn:aws:events:r:1:event-busv2/b/x"),
                    dlq,
                ],
                EVENT_BUS_ARN,
            ),
            (vec![("EVENT_BUS_ARN", "outbox-bus"), dlq], EVENT_BUS_ARN),
            (
                vec![
                    ("EVENT_BUS_NAME", "b"),
                    ("EVENT_SOURCE", "fleetfix.outbox"),
                    dlq,
                ],
                EVENT_SOURCE,
            ),
            (
                vec![("EVENT_BUS_NAME", "b"), ("RELAY_CALLS_IN_FLIGHT", "0"), dlq],
                RELAY_CALLS_IN_FLIGHT,
            ),
            (
                vec![
                    ("EVENT_BUS_NAME", "b"),
                    ("RELAY_CALLS_IN_FLIGHT", "many"),
                    dlq,
                ],
                RELAY_CALLS_IN_FLIGHT,
            ),
        ] {
            assert!(
                matches!(
                    RelayConfig::from_lookup(env(&vars)),
                    Err(ConfigError::Invalid { name, .. }) if name == invalid
                ),
                "{vars:?}"
            );
        }
        assert_eq!(
            ConsumerConfig::from_lookup(env(&[
                ("TABLE_NAME", "t"),
                ("DEAD_LETTER_QUEUE_URL", "https://q"),
            ])),
            Err(ConfigError::Missing("CONSUMER_NAME"))
        );
        let invalid = ConsumerConfig::from_lookup(env(&[
            ("CONSUMER_NAME", "c"),
            ("TABLE_NAME", "t"),
            ("DEAD_LETTER_QUEUE_URL", "dlq"),
        ]));
        assert!(matches!(
            invalid,
            Err(ConfigError::Invalid {
                name: "DEAD_LETTER_QUEUE_URL",
                ..
            })
        ));
        for (name, value) in [
            (PARK_AFTER_ATTEMPTS, "0"),
            (PARK_AFTER_ATTEMPTS, "five"),
            (PARK_AFTER_SECONDS, "1209601"),
        ] {
            let invalid = ConsumerConfig::from_lookup(env(&[
                ("CONSUMER_NAME", "c"),
                ("TABLE_NAME", "t"),
                ("DEAD_LETTER_QUEUE_URL", "https://q"),
                (name, value),
            ]));
            assert!(
                matches!(invalid, Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={value}"
            );
        }
        assert!(matches!(
            CommandApiConfig::from_lookup(env(&[("TABLE_NAME", "two words")]), sources()),
            Err(ConfigError::Invalid {
                name: "TABLE_NAME",
                ..
            })
        ));
    }
}
