//! The reference service as deployed: every domain it runs, declared once.
//! Its binaries are one call each into `outbox-bootstrap` with [`service`].

use outbox_application::Service;

/// The reference service: the seed stories (repairs, orders) and the helpdesk.
pub fn service() -> Service {
    outbox_seeds::service().with(helpdesk::service())
}
