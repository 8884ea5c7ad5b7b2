-- Version 6: roles, for size-based access control. An API key carries the
-- roles its holder has; an image, the roles that may see it above its
-- anonymous cap. Both JSON arrays of strings, empty by default.
ALTER TABLE api_keys ADD COLUMN roles JSONB NOT NULL DEFAULT '[]';
ALTER TABLE images ADD COLUMN roles JSONB NOT NULL DEFAULT '[]';
