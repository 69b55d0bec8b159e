"""Inventory agents (FusionInventory, OCS Inventory) speaking the OCS XML protocol, and nmap scans."""
