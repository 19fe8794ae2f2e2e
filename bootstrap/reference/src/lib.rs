//! The reference service as deployed: every domain it runs, declared once.
//! Its binaries are one call each into `outbox-bootstrap` with [`service`].

use outbox_application::{OutsidePorts, Service};

/// The reference service: the seed stories (repairs, orders), calling out
/// through `ports`, and the helpdesk.
pub fn service(ports: &OutsidePorts) -> Service {
    outbox_seeds::service(ports).with(helpdesk::service())
}
