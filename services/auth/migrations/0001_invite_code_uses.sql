CREATE TABLE "invite_code_uses" (
	"code_hash" "bytea" PRIMARY KEY NOT NULL,
	"uses" integer NOT NULL
);
