-- queue_reports records gain a dedupe tag and an expiry day (src/domain/queue-reports.ts). Reports
-- stored in the old format are dropped: the QS reports a missing queue again with its next fan-out.
UPDATE "groups" SET "queue_reports" = ''::bytea WHERE length("queue_reports") > 0;
