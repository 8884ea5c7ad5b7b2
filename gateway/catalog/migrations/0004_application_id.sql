-- Version 4: mark the file as an image-gateway catalog (the application id "IGWC").
PRAGMA application_id = 1229412163;
