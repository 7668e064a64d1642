-- One database per service (each service migrates its own at start, but does not create it).
CREATE DATABASE phoenix_auth;
CREATE DATABASE phoenix_delivery;
CREATE DATABASE phoenix_queue;
CREATE DATABASE phoenix_federation;
