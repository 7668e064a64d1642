CREATE TABLE "seen_requests" (
	"request_id" "bytea" PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
