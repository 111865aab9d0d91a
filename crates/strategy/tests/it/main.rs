//! The grid's live seams on real bars: snapshot and restore, partial fills, run ids, duplicate fills,
//! cancels of joined orders.

mod replay;
mod seams;
mod sma_seams;
