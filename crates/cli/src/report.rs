//! PLACEHOLDER until the report renderer lands (helper-4 overwrites this whole file).
pub fn render_html(result: &serde_json::Value) -> String {
    format!("<!DOCTYPE html><pre>{}</pre>", result)
}
