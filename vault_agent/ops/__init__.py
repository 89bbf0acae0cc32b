"""Operating agents day to day: doctor, scheduler, dashboard, MCP server."""
