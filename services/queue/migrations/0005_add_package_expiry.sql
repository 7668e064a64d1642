ALTER TABLE "qs_add_packages" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "qs_add_packages_expires_idx" ON "qs_add_packages" USING btree ("expires_at");