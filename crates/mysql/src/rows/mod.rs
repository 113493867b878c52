//! rowbus's own row decoder: rows events decoded straight from their bytes into JSON values, with
//! a column plan computed once per table map. mysql_common still parses the event framing (headers,
//! table maps, the rows event's bitmaps); the row images are ours, so that untrusted bytes never
//! panic and no intermediate value is built per column.

pub mod cursor;
pub mod decimal;
pub mod image;
pub mod json_diff;
pub mod jsonb;
pub mod plan;
pub mod special;
pub mod temporal;
pub mod text;

pub use cursor::{Cursor, DecodeError};
pub use image::{decode_image, Image};
pub use plan::{plan_column, Kind};
