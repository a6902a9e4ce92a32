import { Module } from '@nestjs/common';
import { storeProvider } from '../redis/redis.module';
import { AuthController } from './auth.controller';
import { AuthService } from './auth.service';
import { DevTokenService } from './dev-token.service';
import { JwtAuthGuard } from './jwt-auth.guard';
import { MemoryRevocationStore } from './memory-revocation.store';
import { RedisRevocationStore } from './redis-revocation.store';
import { RevocationStore } from './revocation-store.interface';
import { Revocations } from './revocations.service';
import { TokenVerifier } from './token-verifier.service';

@Module({
  controllers: [AuthController],
  providers: [
    TokenVerifier,
    Revocations,
    AuthService,
    DevTokenService,
    JwtAuthGuard,
    storeProvider<RevocationStore>(
      RevocationStore,
      () => new MemoryRevocationStore(),
      (redis) => new RedisRevocationStore(redis),
    ),
  ],
  exports: [AuthService, JwtAuthGuard],
})
export class AuthModule {}
