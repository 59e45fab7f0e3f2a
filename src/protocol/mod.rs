//! The MySQL client/server protocol as far as splitrail needs it: framing
//! ([`codec`], and [`compress`] under it for `CLIENT_COMPRESS`), the few
//! packets it must read or write itself ([`packets`]), and the
//! client-visible errors it can produce ([`errors`]).
//!
//! Nothing here touches routing or sessions.

pub mod codec;
pub mod compress;
pub mod errors;
pub mod packets;

pub use codec::{Packet, PacketStream};
pub use errors::MySqlError;
