ALTER TABLE "blobs" ADD COLUMN "note" text;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "size" integer;