use super::*;

#[test]
fn a_database_failure_is_stored_without_its_text() {
    let err = sqlx::Error::Protocol("connection to 10.0.0.7 as perfstack failed: secret detail".into());
    let failure = JobFailure::from(err);
    assert_eq!(failure.message, "database error");
    assert!(!failure.permanent);
}
