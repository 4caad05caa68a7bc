//! Relations and the relational learner (ReL): relations as tables over components
//! ([`relation`]), the learner's inputs, batches and objective ([`learner`]), chains of
//! relations ([`chains`]), and a user's image moved by a chain ([`apply`]).

pub mod apply;
pub mod chains;
pub mod learner;
pub mod relation;

pub use learner::RelationalLearner;
pub use relation::{Application, ClassRef, Relation, RelationDecl, RelationSet};
