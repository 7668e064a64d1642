import { auth } from "@phoenix/proto";
import { bidiStreaming } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { authenticateClient } from "./authenticate.js";
import { serveQueueListen } from "./listen.js";

/** ListenConnectionOffers: live listening on the signing client's connection queue. */
export function listenConnectionOffers(ctx: AuthContext) {
  return bidiStreaming<auth.ListenConnectionOffersRequest, auth.ListenConnectionOffersResponse>(
    (requests, call, stream) =>
      serveQueueListen(
        ctx,
        requests,
        call.signal,
        (event) => stream.send({ event }),
        async (tx, init, now) => {
          const { tbs, clientKey } = await authenticateClient(
            ctx,
            tx,
            init,
            auth.ListenConnectionOffersTbs,
            auth.AuthServiceService.listenConnectionOffers,
            now,
          );
          return { owner: { client: clientKey }, sequenceNumberStart: tbs.sequenceNumberStart };
        },
      ),
  );
}
