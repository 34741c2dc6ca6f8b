"""Gateway-owned pages and APIs under /_gateway/."""
