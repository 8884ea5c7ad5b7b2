-- Version 4: mark the database as an image-gateway catalog (SQLite's application id).
COMMENT ON TABLE gateway_catalog IS 'image-gateway catalog';
