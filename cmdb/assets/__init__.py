"""IT asset management on top of the CMDB: vendors, contracts, licences, costs, maintenance,
retirement, physical audits. Reports that need relationships or tickets live in integrations/reports."""
