CREATE TABLE "group_reservations" (
	"group_id" "bytea" PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "groups" (
	"group_id" "bytea" PRIMARY KEY NOT NULL,
	"state" "bytea" NOT NULL,
	"last_active_month" integer NOT NULL,
	"queue_report_key" "bytea" NOT NULL,
	"queue_reports" "bytea" NOT NULL
);
